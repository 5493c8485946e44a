"""The superuser flag lets a user read every row of the supervisor console, and nothing else about queues:
working, supervising and repairing need a role (entitlements.access.console_shows_every_row)."""

import pytest

from entitlements.access import console_shows_every_row, queue_names_for, users_with
from entitlements.models import User
from queues.models import WorkflowQueue
from tasks.models import TaskEventType, TaskHistory, TaskStatus
from tests.console.helpers import TASKS_URL, post_action

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(demo_org) -> User:
    """A superuser holding no role."""
    return User.objects.create_superuser("root", "root@example.org", "pw-for-tests-1")


def test_the_console_shows_every_row_to_an_active_superuser(root):
    assert console_shows_every_row(user=root)


def test_the_console_shows_every_row_to_no_one_else(root, supervisor_sam, caseworker_alice):
    root.is_active = False
    assert not console_shows_every_row(user=root)
    assert not console_shows_every_row(user=supervisor_sam)
    assert not console_shows_every_row(user=caseworker_alice)
    assert not console_shows_every_row(user=None)


@pytest.mark.parametrize("capability", ["view", "work", "supervise", "deploy"])
def test_a_superuser_without_a_role_reaches_no_queue(root, capability):
    assert queue_names_for(user=root, capability=capability) == []


def test_a_superuser_without_a_role_is_nobody_who_may_work_or_supervise_a_queue(root):
    intake = WorkflowQueue.objects.get(queue_name="intake")
    assert root not in users_with(capability="work", queue=intake)
    assert root not in users_with(capability="supervise", queue=intake)


def test_a_superuser_without_a_role_claims_nothing(api_as, root, make_task):
    task = make_task("intake")

    assert api_as(root).post("/api/workflow/tasks/claim/next").status_code == 204
    assert api_as(root).post(f"/api/workflow/tasks/{task.pk}/claim").status_code == 404
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN


def test_a_superuser_lists_every_task_in_the_console(client, root, make_task):
    tasks = [make_task("intake"), make_task("legal-review"), make_task("fraud-investigation")]
    client.force_login(root)

    shown = {row.pk for row in client.get(TASKS_URL).context["cl"].result_list}

    assert {task.pk for task in tasks} <= shown


def test_a_superuser_without_a_supervising_role_cannot_escalate_a_task_from_the_console(client, root, make_task):
    task = make_task("intake", priority=40)
    client.force_login(root)

    post_action(client, TASKS_URL, "escalate_tasks", [task.pk], priority="90", reason="because I can")

    task.refresh_from_db()
    assert (task.priority, task.escalation_level) == (40, 0)
    assert not TaskHistory.objects.filter(task=task, event_type=TaskEventType.ESCALATED).exists()
