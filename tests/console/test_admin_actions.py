"""Bulk admin actions of the supervisor console: through the services, with history, within supervised queues."""

import pytest
from django.contrib.messages import get_messages

from queues.models import WorkflowQueue
from tasks.models import TaskEventType, TaskHistory, TaskStatus, WorkflowTask
from tasks.services import task_claim

from .helpers import QUEUES_URL, TASKS_URL, legal_supervisor, post_action

pytestmark = pytest.mark.django_db

CHANGELIST_QUERY_BUDGET = 25


def events(task, event_type):
    return TaskHistory.objects.filter(task=task, event_type=event_type)


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def supervisor_client(client, supervisor_sam):
    client.force_login(supervisor_sam)
    return client


def test_bulk_reassign_asks_for_the_assignee_first(supervisor_client, make_task):
    task = make_task("intake", "Review")

    response = post_action(supervisor_client, TASKS_URL, "reassign_tasks", [task.pk])

    assert response.status_code == 200
    assert b'name="assignee"' in response.content
    assert not events(task, TaskEventType.REASSIGNED).exists()


def test_bulk_reassign_gives_each_task_to_the_assignee_and_records_history(
    supervisor_client, supervisor_sam, make_task
):
    first, second = make_task("intake", "One"), make_task("intake", "Two")

    response = post_action(
        supervisor_client, TASKS_URL, "reassign_tasks", [first.pk, second.pk], assignee="alice", comment="cover"
    )

    assert "Reassigned 2 tasks." in texts(response)
    for task in (first, second):
        task.refresh_from_db()
        assert (task.status, task.assignee.username) == (TaskStatus.CLAIMED, "alice")
        event = events(task, TaskEventType.REASSIGNED).get()
        assert event.actor == supervisor_sam and event.new_values["assignee"] == "alice"
    assert WorkflowQueue.objects.get(queue_name="intake").current_load == 2


def test_bulk_reassign_reports_tasks_the_service_refuses(supervisor_client, make_task):
    task = make_task("intake", "Needs fraud skills", required_skills=["fraud"])

    response = post_action(supervisor_client, TASKS_URL, "reassign_tasks", [task.pk], assignee="alice")

    assert any(m.startswith(f"Not reassigned: #{task.pk}") for m in texts(response))
    assert not events(task, TaskEventType.REASSIGNED).exists()


def test_bulk_escalate_raises_priority_and_records_history(supervisor_client, make_task):
    task = make_task("intake", "Urgent", priority=40)

    response = post_action(
        supervisor_client,
        TASKS_URL,
        "escalate_tasks",
        [task.pk],
        priority="90",
        queue="escalations",
        reason="press enquiry",
    )

    assert "Escalated 1 task." in texts(response)
    task.refresh_from_db()
    assert (task.priority, task.queue_id, task.escalation_level) == (90, "escalations", 1)
    assert events(task, TaskEventType.ESCALATED).get().comment == "press enquiry"


def test_bulk_escalate_needs_a_priority_or_a_queue(supervisor_client, make_task):
    task = make_task("intake", "Urgent")

    response = post_action(supervisor_client, TASKS_URL, "escalate_tasks", [task.pk], reason="why not")

    assert b"Give a new priority, a queue, or both." in response.content
    assert not events(task, TaskEventType.ESCALATED).exists()


def test_bulk_move_release_and_priority_go_through_the_services(supervisor_client, caseworker_alice, make_task):
    task = make_task("intake", "Wandering")
    task_claim(user=caseworker_alice, task_id=task.pk)

    post_action(supervisor_client, TASKS_URL, "release_tasks", [task.pk])
    post_action(supervisor_client, TASKS_URL, "change_task_priority", [task.pk], priority="70", reason="backlog")
    post_action(supervisor_client, TASKS_URL, "move_tasks", [task.pk], queue="triage", reason="wrong queue")

    task.refresh_from_db()
    assert (task.status, task.priority, task.queue_id) == (TaskStatus.OPEN, 70, "triage")
    kinds = list(TaskHistory.objects.filter(task=task).values_list("event_type", flat=True))
    assert kinds[-3:] == [TaskEventType.RELEASED, TaskEventType.PRIORITY_CHANGED, TaskEventType.MOVED]


def test_department_supervisor_does_not_see_other_departments_tasks(client, make_task):
    lena = legal_supervisor()
    intake_task, legal_task = make_task("intake", "Intake work"), make_task("legal-review", "Legal work")
    client.force_login(lena)

    response = client.get(TASKS_URL)

    shown = [row.pk for row in response.context["cl"].result_list]
    assert legal_task.pk in shown and intake_task.pk not in shown


def test_department_supervisor_cannot_act_on_another_departments_queue(client, make_task):
    lena = legal_supervisor()
    intake_task = make_task("intake", "Intake work", priority=40)
    client.force_login(lena)

    post_action(client, TASKS_URL, "escalate_tasks", [intake_task.pk], priority="90", reason="not mine")
    post_action(client, TASKS_URL, "reassign_tasks", [intake_task.pk], assignee="alice")

    intake_task.refresh_from_db()
    assert (intake_task.priority, intake_task.status, intake_task.escalation_level) == (40, TaskStatus.OPEN, 0)
    assert list(TaskHistory.objects.filter(task=intake_task).values_list("event_type", flat=True)) == ["CREATED"]


def test_the_services_refuse_the_action_even_on_rows_the_changelist_would_hide(rf, make_task):
    """The action itself, handed intake tasks directly: every row is refused by the service, none changes."""
    from django.contrib import admin
    from django.contrib.messages.storage.fallback import FallbackStorage

    from tasks.console import admin_console

    lena = legal_supervisor()
    tasks = [make_task("intake", "One", priority=40), make_task("intake", "Two", priority=40)]
    request = rf.post(TASKS_URL, {"apply": "Escalate", "priority": "90", "reason": "not mine"})
    request.user = lena
    request.session = {}
    request._messages = FallbackStorage(request)
    model_admin = admin.site._registry[WorkflowTask]

    admin_console.escalate_tasks(model_admin, request, WorkflowTask.objects.filter(pk__in=[t.pk for t in tasks]))

    assert [str(m) for m in request._messages] == [
        f"Not escalated: #{t.pk}: not in a queue you supervise" for t in tasks
    ]
    assert set(WorkflowTask.objects.filter(pk__in=[t.pk for t in tasks]).values_list("priority", flat=True)) == {40}


def test_department_supervisor_cannot_pause_another_departments_queue(client):
    lena = legal_supervisor()
    client.force_login(lena)
    intake = WorkflowQueue.objects.get(queue_name="intake")

    post_action(client, QUEUES_URL, "pause_intake", [intake.pk])

    intake.refresh_from_db()
    assert not intake.intake_paused


def test_supervisor_pauses_and_resumes_intake(supervisor_client):
    intake = WorkflowQueue.objects.get(queue_name="intake")

    post_action(supervisor_client, QUEUES_URL, "pause_intake", [intake.pk])
    intake.refresh_from_db()
    assert intake.intake_paused

    post_action(supervisor_client, QUEUES_URL, "resume_intake", [intake.pk])
    intake.refresh_from_db()
    assert not intake.intake_paused


def test_rebalance_now_moves_open_tasks_of_a_full_queue_to_its_overflow(supervisor_client, make_task):
    task = make_task("intake", "Spill over")
    WorkflowQueue.objects.filter(queue_name="intake").update(max_capacity=0)
    intake = WorkflowQueue.objects.get(queue_name="intake")

    response = post_action(supervisor_client, QUEUES_URL, "rebalance_now", [intake.pk])

    task.refresh_from_db()
    assert task.queue_id == "triage"
    assert "Moved 1 tasks from intake to triage." in texts(response)


def test_department_supervisor_cannot_rebalance_queues_of_other_departments(client, make_task):
    lena = legal_supervisor()
    task = make_task("intake", "Spill over")
    WorkflowQueue.objects.filter(queue_name="intake").update(max_capacity=0)
    client.force_login(lena)
    legal = WorkflowQueue.objects.get(queue_name="legal-review")

    post_action(client, QUEUES_URL, "rebalance_now", [legal.pk])

    task.refresh_from_db()
    assert task.queue_id == "intake"


def test_task_changelist_renders_in_a_bounded_number_of_queries(
    supervisor_client, make_task, django_assert_max_num_queries
):
    for i in range(40):
        make_task("intake" if i % 2 else "triage", f"Task {i}")

    with django_assert_max_num_queries(CHANGELIST_QUERY_BUDGET):
        response = supervisor_client.get(TASKS_URL + "?overdue=no&priority_band=normal")

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 40


def test_task_changelist_searches_by_business_key(supervisor_client, make_task):
    make_task("intake", "Unrelated")

    response = supervisor_client.get(TASKS_URL + "?q=CASE-NOPE")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_the_queue_form_shows_the_escalation_rules_format(client, supervisor_sam):
    client.force_login(supervisor_sam)
    intake = WorkflowQueue.objects.get(queue_name="intake")
    body = client.get(f"{QUEUES_URL}{intake.pk}/change/").content.decode()
    assert '"before_due"' in body and "reassign_to_supervisor" in body
