"""In-app notifications: made by push routing, the SLA sweep and alerts; read, listed and marked read by their
recipient only."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from entitlements.row_scope import acting_as
from entitlements.services import role_assignment_grant, role_save
from queues.models import WorkflowQueue
from queues.services import queue_save
from tasks.models import Notification, NotificationKind, WorkflowTask
from tasks.notifications import (
    Notice,
    notification_mark_read,
    notifications_create,
    notifications_for,
    notifications_purge,
    unread_count,
)
from tasks.services import task_claim
from tasks.sla.alerts import capacity_alerts_raise
from tasks.sla.escalation import escalate_overdue_tasks
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_deliveries(monkeypatch):
    """Alert deliveries would go to a broker after commit: these tests look at notifications only."""
    monkeypatch.setattr("tasks.sla.alerts.deliver_alert.delay", lambda delivery_id: None)


@pytest.fixture
def push_worker(demo_org):
    """A queue that pushes its tasks, and the one caseworker who may work it."""
    queue_save(queue_name="push", display_name="Push", assignment_mode="PUSH", routing_strategy="ROUND_ROBIN")
    role = role_save(role_code="push-worker", name="Push", queue_names=["push"], permissions=["view", "work"])
    worker = UserFactory(username="pat", max_concurrent_tasks=5)
    role_assignment_grant(user=worker, role=role)
    return worker


def kinds_of(user):
    return list(Notification.objects.filter(recipient=user).values_list("kind", flat=True))


def overdue(task, hours=1):
    WorkflowTask.objects.filter(pk=task.pk).update(due_date=timezone.now() - timedelta(hours=hours))


# --- made by the events ----------------------------------------------------------------------------------------------


def test_a_task_pushed_to_a_caseworker_notifies_them_with_a_link_to_it(push_worker, make_task):
    task = make_task("push", name="Check the ledger")

    notification = Notification.objects.get(recipient=push_worker)
    assert notification.kind == NotificationKind.TASK_ASSIGNED
    assert notification.link == f"/tasks/{task.pk}/"
    assert f"#{task.pk}" in notification.text and "Check the ledger" in notification.text
    assert notification.read_at is None


def test_a_task_that_nobody_is_pushed_notifies_nobody(make_task):
    make_task("intake")  # a queue that waits for claims

    assert not Notification.objects.exists()


def test_an_escalation_tells_the_assignee_their_task_escalated(demo_org, make_task, caseworker_alice):
    WorkflowQueue.objects.filter(queue_name="triage").update(
        escalation_rules=[{"level": 1, "trigger": {"type": "overdue"}, "actions": {"raise_priority": 10}}]
    )
    task = make_task("triage", name="Sort the post")
    task_claim(user=caseworker_alice, task_id=task.pk)
    overdue(task)

    escalate_overdue_tasks()

    notification = Notification.objects.get(recipient=caseworker_alice)
    assert notification.kind == NotificationKind.TASK_ESCALATED
    assert "escalated to level 1" in notification.text and notification.link == f"/tasks/{task.pk}/"


def test_a_level_before_the_due_date_tells_the_assignee_their_task_is_at_risk(demo_org, make_task, caseworker_alice):
    WorkflowQueue.objects.filter(queue_name="triage").update(
        escalation_rules=[
            {"level": 1, "trigger": {"type": "before_due", "hours": 4}, "actions": {"raise_priority": 10}}
        ]
    )
    task = make_task("triage")
    task_claim(user=caseworker_alice, task_id=task.pk)
    WorkflowTask.objects.filter(pk=task.pk).update(due_date=timezone.now() + timedelta(hours=1))

    escalate_overdue_tasks()

    assert kinds_of(caseworker_alice) == [NotificationKind.TASK_AT_RISK]


def test_an_escalation_of_an_unclaimed_task_tells_no_caseworker(demo_org, make_task):
    WorkflowQueue.objects.filter(queue_name="triage").update(
        escalation_rules=[{"level": 1, "trigger": {"type": "overdue"}, "actions": {"raise_priority": 10}}]
    )
    overdue(make_task("triage"))

    escalate_overdue_tasks()

    assert not Notification.objects.exists()


def test_a_task_reassigned_to_the_supervisor_by_escalation_is_theirs_to_hear_of(
    demo_org, make_task, supervisor_sam, caseworker_alice
):
    WorkflowQueue.objects.filter(queue_name="triage").update(
        escalation_rules=[{"level": 1, "trigger": {"type": "overdue"}, "actions": {"reassign_to_supervisor": True}}]
    )
    task = make_task("triage")
    task_claim(user=caseworker_alice, task_id=task.pk)
    overdue(task)

    escalate_overdue_tasks()

    assert kinds_of(caseworker_alice) == [NotificationKind.TASK_ESCALATED]
    assert kinds_of(supervisor_sam) == [NotificationKind.TASK_ASSIGNED]


def test_an_sla_breach_alert_tells_the_supervisors_of_its_queue_once(demo_org, make_task, supervisor_sam):
    WorkflowQueue.objects.filter(queue_name="triage").update(
        escalation_rules=[{"level": 1, "trigger": {"type": "overdue"}, "actions": {"notify": True}}]
    )
    task = make_task("triage", name="Late one")
    overdue(task)

    escalate_overdue_tasks()
    escalate_overdue_tasks()

    notification = Notification.objects.get(kind=NotificationKind.SLA_BREACH)
    assert notification.recipient == supervisor_sam
    assert notification.link == f"/tasks/{task.pk}/"
    assert "SLA breach in queue triage" in notification.text


def test_a_capacity_alert_tells_only_the_supervisors_of_that_queue(demo_org, supervisor_sam):
    legal_lead = UserFactory(username="lena")
    role = role_save(
        role_code="legal-lead", name="Legal lead", queue_names=["legal-review"], permissions=["view", "supervise"]
    )
    role_assignment_grant(user=legal_lead, role=role)
    WorkflowQueue.objects.filter(queue_name="triage").update(current_load=95, max_capacity=100)

    assert capacity_alerts_raise() == 1

    notification = Notification.objects.get(kind=NotificationKind.CAPACITY)
    assert notification.recipient == supervisor_sam
    assert notification.link == "/inbox/queues/?queue=triage"
    assert not Notification.objects.filter(recipient=legal_lead).exists()


# --- read by the recipient only --------------------------------------------------------------------------------------


def notify(user, text="Something happened", link="/inbox/"):
    notifications_create(notices=[Notice(user.pk, NotificationKind.TASK_ASSIGNED, text, link)])
    return Notification.objects.filter(recipient=user).latest("notification_id")


def test_marking_read_sets_the_time_once_and_drops_the_unread_count(caseworker_alice):
    notification = notify(caseworker_alice)
    assert unread_count(user=caseworker_alice) == 1

    first = notification_mark_read(user=caseworker_alice, notification_id=notification.pk).read_at
    again = notification_mark_read(user=caseworker_alice, notification_id=notification.pk).read_at

    assert first is not None and again == first
    assert unread_count(user=caseworker_alice) == 0


def test_another_users_notification_cannot_be_marked_read(caseworker_alice, fraud_investigator_bob):
    from core.errors import NotFound

    notification = notify(caseworker_alice)

    with pytest.raises(NotFound):
        notification_mark_read(user=fraud_investigator_bob, notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.read_at is None


def test_row_level_security_hides_other_users_notifications_even_without_the_filter(
    caseworker_alice, fraud_investigator_bob, row_security_enforced
):
    notify(caseworker_alice, "for alice")
    notify(fraud_investigator_bob, "for bob")

    with acting_as(fraud_investigator_bob):
        assert list(Notification.objects.values_list("text", flat=True)) == ["for bob"]
        assert Notification.objects.filter(recipient=caseworker_alice).update(read_at=timezone.now()) == 0


def test_the_purge_keeps_recent_and_unread_ones_and_deletes_old_read_and_very_old_ones(caseworker_alice, settings):
    settings.NOTIFICATIONS_KEEP_READ_DAYS = 7
    settings.NOTIFICATIONS_KEEP_DAYS = 30
    now = timezone.now()
    fresh = notify(caseworker_alice, "fresh")
    read_long_ago = notify(caseworker_alice, "read long ago")
    unread_old = notify(caseworker_alice, "unread, 10 days")
    ancient = notify(caseworker_alice, "unread, 40 days")
    Notification.objects.filter(pk=read_long_ago.pk).update(
        created_at=now - timedelta(days=10), read_at=now - timedelta(days=8)
    )
    Notification.objects.filter(pk=unread_old.pk).update(created_at=now - timedelta(days=10))
    Notification.objects.filter(pk=ancient.pk).update(created_at=now - timedelta(days=40))

    assert notifications_purge(now=now) == 2

    assert set(Notification.objects.values_list("pk", flat=True)) == {fresh.pk, unread_old.pk}


# --- pages -------------------------------------------------------------------------------------------------------------


def page_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_bell_shows_the_unread_count_on_the_inbox(caseworker_alice):
    notify(caseworker_alice)
    notify(caseworker_alice)

    page = page_as(caseworker_alice).get("/inbox/").content.decode()

    assert 'aria-label="Notifications, 2 unread"' in page


def test_opening_a_notification_marks_it_read_and_goes_to_its_link(caseworker_alice):
    notification = notify(caseworker_alice, link="/inbox/queues/")

    response = page_as(caseworker_alice).post(f"/notifications/{notification.pk}/open/")

    assert response.status_code == 303 and response["Location"] == "/inbox/queues/"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_opening_another_users_notification_is_404_and_leaves_it_unread(caseworker_alice, fraud_investigator_bob):
    notification = notify(caseworker_alice)

    response = page_as(fraud_investigator_bob).post(f"/notifications/{notification.pk}/open/")

    assert response.status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


def test_the_list_page_shows_only_ones_own(caseworker_alice, fraud_investigator_bob):
    notify(caseworker_alice, "Alice's notice")
    notify(fraud_investigator_bob, "Bob's notice")

    page = page_as(fraud_investigator_bob).get("/notifications/").content.decode()

    assert "Bob&#x27;s notice" in page and "Alice" not in page


def test_mark_all_read_reads_only_ones_own(caseworker_alice, fraud_investigator_bob):
    notify(caseworker_alice)
    notify(fraud_investigator_bob)

    page_as(fraud_investigator_bob).post("/notifications/read-all/")

    assert unread_count(user=fraud_investigator_bob) == 0
    assert unread_count(user=caseworker_alice) == 1


def test_the_console_header_shows_the_bell(supervisor_sam):
    notify(supervisor_sam)

    page = page_as(supervisor_sam).get("/admin/").content.decode()

    assert 'aria-label="Notifications, 1 unread"' in page


# --- API ---------------------------------------------------------------------------------------------------------------


def test_the_api_lists_only_the_callers_notifications(api_as, caseworker_alice, fraud_investigator_bob):
    mine = notify(fraud_investigator_bob, "mine")
    notify(caseworker_alice, "not mine")

    body = api_as(fraud_investigator_bob).get("/api/notifications/").json()

    assert [(n["id"], n["text"], n["read"]) for n in body] == [(mine.pk, "mine", False)]


def test_the_api_marks_ones_own_read_and_404s_anothers(api_as, caseworker_alice, fraud_investigator_bob):
    mine = notify(fraud_investigator_bob)
    theirs = notify(caseworker_alice)
    client = api_as(fraud_investigator_bob)

    assert client.post(f"/api/notifications/{mine.pk}/read").json()["read"] is True
    refused = client.post(f"/api/notifications/{theirs.pk}/read")

    assert refused.status_code == 404 and refused.json()["code"] == "notification_not_found"
    assert notifications_for(user=caseworker_alice).get().read_at is None


def test_an_id_past_any_bigint_is_404_on_the_page_and_the_api(api_as, caseworker_alice):
    huge = 10**20

    assert page_as(caseworker_alice).post(f"/notifications/{huge}/open/").status_code == 404
    assert api_as(caseworker_alice).post(f"/api/notifications/{huge}/read").status_code == 404
