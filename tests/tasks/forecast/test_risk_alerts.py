"""SLA-risk alerts (tasks/sla/alerts.py: sla_risk_alerts_raise): tasks forecast to breach alert before they are due,
once per task and due date, through the alert rules and channels the other alerts use."""

from datetime import timedelta

import pytest
from django.utils import timezone

from entitlements.access import users_with
from entitlements.row_scope import system_scope
from queues.models import WorkflowQueue
from tasks.models import (
    Alert,
    AlertDelivery,
    AlertKind,
    AlertRule,
    Notification,
    NotificationKind,
    TaskRisk,
    WorkflowTask,
)
from tasks.sla.alerts import sla_risk_alerts_raise
from tests.tasks.test_alerts import channel, deliver, enqueued, receiver  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def scope(demo_org):
    with system_scope():
        Alert.objects.all().delete()
        yield


def _task(make_task, probability, *, due_in=timedelta(hours=6), name="Task"):
    task = make_task("intake", name=name)
    WorkflowTask.objects.filter(pk=task.pk).update(due_date=timezone.now() + due_in)
    TaskRisk.objects.create(
        task_id=task.task_id, queue_name="intake", breach_probability=probability, computed_at=timezone.now()
    )
    return task


def test_a_task_forecast_to_breach_alerts_once_before_it_is_due(make_task, enqueued):  # noqa: F811
    risky = _task(make_task, 0.8, name="Risky")
    _task(make_task, 0.3, name="Safe")
    _task(make_task, 0.99, due_in=-timedelta(hours=1), name="Already overdue")

    assert sla_risk_alerts_raise() == 1
    assert sla_risk_alerts_raise() == 0

    alert = Alert.objects.get()
    assert (alert.kind, alert.task_id, alert.queue_name) == (AlertKind.SLA_RISK, risky.task_id, "intake")
    assert "forecast to miss its due date" in alert.summary and "(80 %)" in alert.summary


def test_risk_alerts_reach_the_channels_that_take_them(make_task, receiver):  # noqa: F811
    channel("ops-slack", webhook_url=f"{receiver.url}/hook", alert_kinds=[AlertKind.SLA_RISK])
    channel("capacity-only", webhook_url=f"{receiver.url}/other", alert_kinds=[AlertKind.CAPACITY])
    _task(make_task, 0.9, name="Risky")

    sla_risk_alerts_raise()

    delivery = AlertDelivery.objects.get()
    deliver(delivery)
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    assert "SLA at risk in queue intake" in receiver.bodies[0]["text"]


def test_a_disabled_risk_rule_raises_nothing(make_task):
    AlertRule.objects.update_or_create(kind=AlertKind.SLA_RISK, defaults={"enabled": False, "description": "off"})
    _task(make_task, 0.9)

    assert sla_risk_alerts_raise() == 0


def test_the_queues_supervisors_and_the_tasks_holder_are_told_in_the_app(make_task, supervisor_sam, caseworker_alice):
    risky = _task(make_task, 0.9, name="Risky")
    WorkflowTask.objects.filter(pk=risky.pk).update(status="CLAIMED", assignee=caseworker_alice)

    sla_risk_alerts_raise()

    told = {(n.recipient_id, n.kind, n.link) for n in Notification.objects.all()}
    link = f"/tasks/{risky.task_id}/"
    assert (supervisor_sam.pk, NotificationKind.SLA_RISK, link) in told
    assert (caseworker_alice.pk, NotificationKind.TASK_AT_RISK, link) in told
    assert {recipient for recipient, _, _ in told} <= {caseworker_alice.pk} | {
        user.pk for user in users_with(capability="supervise", queue=WorkflowQueue.objects.get(queue_name="intake"))
    }
