"""Supervisors move work only between queues they supervise, or where the source queue's configuration sends it."""

import pytest
from django.contrib.auth.models import Group

from entitlements.models import SecurityEvent, User
from entitlements.services import role_assignment_grant, role_save
from queues.models import WorkflowQueue
from tasks import services
from tasks.models import WorkflowTask

ESCALATION_RULES = [{"level": 1, "trigger": {"type": "overdue"}, "actions": {"move_to_queue": "escalations"}}]


@pytest.fixture
def intake_supervisor(demo_org):
    role = role_save(
        role_code="intake-supervisor",
        name="Intake supervisor",
        queue_names=["intake"],
        permissions=["view", "supervise"],
    )
    user = User.objects.create_user("ivy", password="ivy-pass-123", is_staff=True)
    user.groups.add(Group.objects.get(name="supervisor-console"))
    role_assignment_grant(user=user, role=role)
    return user


@pytest.fixture
def intake_task(make_task):
    return make_task("intake", name="Intake review", priority=50)


def test_intake_supervisor_cannot_escalate_into_a_queue_they_do_not_supervise(api_as, intake_supervisor, intake_task):
    response = api_as(intake_supervisor).post(
        f"/api/workflow/tasks/{intake_task.pk}/escalate/", {"queue": "legal-review"}, format="json"
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "queue_not_supervised" and "queue" in body["fields"]
    intake_task.refresh_from_db()
    assert intake_task.queue_id == "intake" and intake_task.escalation_level == 0
    denial = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED", actor=intake_supervisor).latest("event_id")
    assert "legal-review" in denial.details["reason"]


def test_intake_supervisor_cannot_move_a_task_into_a_queue_they_do_not_supervise(intake_supervisor, intake_task):
    from core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.task_move(user=intake_supervisor, task_id=intake_task.pk, queue_name="legal-review")
    assert WorkflowTask.objects.get(pk=intake_task.pk).queue_id == "intake"


def test_supervisor_escalates_into_a_queue_they_supervise(api_as, supervisor_sam, intake_task):
    response = api_as(supervisor_sam).post(
        f"/api/workflow/tasks/{intake_task.pk}/escalate", {"queue": "legal-review"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert WorkflowTask.objects.get(pk=intake_task.pk).queue_id == "legal-review"


def test_supervisor_escalates_to_the_source_queues_configured_escalation_target(intake_supervisor, intake_task):
    WorkflowQueue.objects.filter(queue_name="intake").update(escalation_rules=ESCALATION_RULES)
    task = services.task_escalate(user=intake_supervisor, task_id=intake_task.pk, queue_name="escalations")
    assert task.queue_id == "escalations" and task.escalation_level == 1


def test_supervisor_moves_to_the_source_queues_overflow_queue(intake_supervisor, intake_task):
    assert WorkflowQueue.objects.get(queue_name="intake").overflow_queue.queue_name == "triage"  # the demo's
    task = services.task_move(user=intake_supervisor, task_id=intake_task.pk, queue_name="triage")
    assert task.queue_id == "triage"


def test_console_bulk_move_refuses_an_unsupervised_queue_and_audits_it(client, intake_supervisor, intake_task):
    client.force_login(intake_supervisor)
    response = client.post(
        "/admin/tasks/workflowtask/",
        {
            "action": "move_tasks",
            "_selected_action": [intake_task.pk],
            "queue": "legal-review",
            "reason": "try",
            "apply": "1",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert WorkflowTask.objects.get(pk=intake_task.pk).queue_id == "intake"
    assert any("do not supervise" in str(m) for m in response.context["messages"])
    assert SecurityEvent.objects.filter(
        event_type="PERMISSION_DENIED", actor=intake_supervisor, details__task_id=intake_task.pk
    ).exists()
