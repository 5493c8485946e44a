"""The admin's task page shows a task; it cannot change, add or delete one outside the workflow services."""

import pytest

from tasks.models import TaskHistory, TaskStatus, WorkflowTask

from .helpers import TASKS_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor_client(client, supervisor_sam):
    client.force_login(supervisor_sam)
    return client


@pytest.fixture
def superuser_client(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.org", "pw-for-tests-1")
    client.force_login(root)
    return client


@pytest.mark.parametrize("who", ["supervisor_client", "superuser_client"])
def test_completing_a_task_through_the_admin_form_is_refused(request, who, make_task):
    client = request.getfixturevalue(who)
    task = make_task("intake", "Review")

    response = client.post(
        f"{TASKS_URL}{task.pk}/change/",
        {
            "name": "Review",
            "queue": "intake",
            "status": TaskStatus.COMPLETED,
            "priority": 50,
            "escalation_level": 0,
        },
    )

    assert response.status_code == 403
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN
    assert not TaskHistory.objects.filter(task=task).exclude(event_type="CREATED").exists()


def test_the_task_page_shows_the_task_read_only(supervisor_client, make_task):
    task = make_task("intake", "Review")

    response = supervisor_client.get(f"{TASKS_URL}{task.pk}/change/")

    assert response.status_code == 200
    assert b"Review" in response.content
    assert b'name="_save"' not in response.content
    assert b'name="status"' not in response.content


@pytest.mark.parametrize("who", ["supervisor_client", "superuser_client"])
def test_tasks_cannot_be_added_or_deleted_in_admin(request, who, make_task):
    client = request.getfixturevalue(who)
    task = make_task("intake", "Review")

    assert client.get(f"{TASKS_URL}add/").status_code == 403
    assert client.post(f"{TASKS_URL}{task.pk}/delete/", {"post": "yes"}).status_code == 403
    changelist = client.get(TASKS_URL)
    assert b'value="delete_selected"' not in changelist.content
    assert b'value="escalate_tasks"' in changelist.content or b"escalate" in changelist.content
    assert WorkflowTask.objects.filter(pk=task.pk).exists()
