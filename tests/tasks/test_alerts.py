"""Alerts: SLA breaches and queues over capacity raise one alert each, delivered after commit to their channels.

A real HTTP server on 127.0.0.1 stands in for Slack, Teams and PagerDuty; email goes to Django's locmem outbox.
Delivery runs the Celery job synchronously (`.apply()`, retries included); tests/project/test_celery_beat.py
covers a real worker.
"""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone

from queues.models import WorkflowQueue
from tasks.models import Alert, AlertChannel, AlertDelivery, AlertRule, WorkflowTask
from tasks.sla.alerts import alert_channel_test, capacity_alerts_raise, deliver_alert, sla_breach_alerts_raise
from tasks.sla.escalation import EscalationOutcome, escalate_overdue_tasks

NOTIFY_RULES = [
    {"level": 1, "trigger": {"type": "overdue"}, "actions": {"raise_priority": 20, "notify": True}},
    {"level": 2, "trigger": {"type": "overdue_by", "hours": 24}, "actions": {"raise_priority": 10}},
]


class Receiver:
    """What the local webhook server was sent, and the statuses it answers with (then `default_status`)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[int] = []
        self.default_status = 200
        self.url = ""

    @property
    def bodies(self) -> list:
        return [request["json"] for request in self.requests]


@pytest.fixture
def receiver():
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.requests.append(
                {"path": self.path, "content_type": self.headers.get("Content-Type"), "json": json.loads(body)}
            )
            status = received.answers.pop(0) if received.answers else received.default_status
            answer = json.dumps({"status": "success" if status < 300 else "error"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_port}"
    yield received
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def no_alerts_yet(request):
    """Each test in a rolled-back transaction (but the race test, which commits) that starts from no alerts or
    channels and idle queues (committed tests elsewhere may have left some)."""
    if "committed_db" in request.fixturenames:
        return
    request.getfixturevalue("demo_org")
    AlertDelivery.objects.all().delete()
    Alert.objects.all().delete()
    AlertChannel.objects.all().delete()
    WorkflowQueue.objects.update(current_load=0, max_capacity=100)


@pytest.fixture
def enqueued(monkeypatch):
    """Delivery ids handed to Celery (recorded instead of sent to the broker)."""
    ids = []
    monkeypatch.setattr(deliver_alert, "delay", ids.append)
    return ids


def load(queue_name, current, capacity=100):
    WorkflowQueue.objects.filter(queue_name=queue_name).update(current_load=current, max_capacity=capacity)


def channel(name="ops-slack", kind="SLACK", **fields):
    return AlertChannel.objects.create(name=name, kind=kind, **fields)


def deliver(delivery):
    """Run the delivery job as a worker would, retries and all, without waiting out the backoff."""
    result = deliver_alert.apply(args=[delivery.pk])
    delivery.refresh_from_db()
    return result


# --- Raising -----------------------------------------------------------------------------------------------------


def test_capacity_alert_fires_over_90_percent_and_not_at_90():
    load("triage", 91)
    load("intake", 90)
    now = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)
    assert capacity_alerts_raise(now=now) == 1
    alert = Alert.objects.get()
    assert (alert.kind, alert.queue_name, alert.dedupe_key, alert.severity) == (
        "CAPACITY",
        "triage",
        "capacity:triage:2026-03-04T10",
        "warning",
    )
    assert alert.summary == "Queue triage is at 91.0 % of capacity (91 of 100)"
    assert alert.details["current_load"] == 91 and alert.details["threshold_percent"] == 90


def test_capacity_check_twice_in_the_same_hour_raises_one_alert_and_one_delivery_per_channel(enqueued):
    channel("ops-slack")
    channel("ops-mail", "EMAIL", email_recipients=["ops@example.org"])
    load("triage", 95)
    now = datetime(2026, 3, 4, 10, 5, tzinfo=UTC)
    assert capacity_alerts_raise(now=now) == 1
    assert capacity_alerts_raise(now=now + timedelta(minutes=50)) == 0
    assert Alert.objects.count() == 1
    assert sorted(AlertDelivery.objects.values_list("channel__name", flat=True)) == ["ops-mail", "ops-slack"]
    assert capacity_alerts_raise(now=now + timedelta(hours=1)) == 1


def test_capacity_check_is_one_statement_however_many_queues_are_full():
    for name in ["intake", "triage", "escalations", "fraud-investigation"]:
        load(name, 99)
    channel("ops-slack")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert capacity_alerts_raise() == 4
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT INTO flowable.alerts" in q["sql"]]
    assert len(inserts) == 1
    assert AlertDelivery.objects.count() == 4


def test_a_queue_without_capacity_set_never_alerts():
    load("triage", 5, capacity=0)
    assert capacity_alerts_raise() == 0


def test_disabled_channel_and_channel_for_other_kinds_get_nothing(enqueued):
    channel("muted", enabled=False)
    channel("sla-only", alert_kinds=["SLA_BREACH"])
    load("triage", 99)
    assert capacity_alerts_raise() == 1
    assert AlertDelivery.objects.count() == 0
    assert enqueued == []


def test_disabled_rule_raises_nothing():
    AlertRule.objects.filter(kind="CAPACITY").update(enabled=False)
    load("triage", 99)
    assert capacity_alerts_raise() == 0


def test_deliveries_are_enqueued_only_after_commit(enqueued, django_capture_on_commit_callbacks):
    channel("ops-slack")
    load("triage", 99)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        capacity_alerts_raise()
    assert enqueued == [] and len(callbacks) == 1
    callbacks[0]()
    assert enqueued == [AlertDelivery.objects.get().pk]


def test_raising_the_same_sla_level_twice_creates_one_alert_and_one_delivery(make_task, enqueued):
    channel("ops-slack")
    task = make_task("triage")
    outcome = EscalationOutcome("triage", 1, 1, True, [task.pk])
    assert sla_breach_alerts_raise(outcomes=[outcome]) == 1
    assert sla_breach_alerts_raise(outcomes=[outcome]) == 0
    alert = Alert.objects.get()
    assert (alert.dedupe_key, alert.task_id, alert.level, alert.severity) == (
        f"sla:{task.pk}:1",
        task.pk,
        1,
        "critical",
    )
    assert AlertDelivery.objects.count() == 1


def test_escalation_with_a_notify_level_raises_one_alert_per_task_after_commit(
    make_task, enqueued, django_capture_on_commit_callbacks
):
    WorkflowQueue.objects.filter(queue_name="triage").update(escalation_rules=NOTIFY_RULES)
    channel("ops-slack")
    tasks = [make_task("triage", name=f"Review {n}") for n in range(2)]
    WorkflowTask.objects.filter(pk__in=[t.pk for t in tasks]).update(due_date=timezone.now() - timedelta(hours=30))
    with django_capture_on_commit_callbacks(execute=True):
        escalate_overdue_tasks()  # level 1 (notify)
        assert enqueued == []
        escalate_overdue_tasks()  # level 2 (no notify)
        escalate_overdue_tasks()  # nothing left
    keys = sorted(Alert.objects.values_list("dedupe_key", flat=True))
    assert keys == sorted(f"sla:{t.pk}:1" for t in tasks)
    assert sorted(enqueued) == sorted(AlertDelivery.objects.values_list("pk", flat=True)) and len(enqueued) == 2
    alert = Alert.objects.get(task=tasks[0])
    assert alert.summary.startswith(
        f'SLA breach in queue triage: task #{tasks[0].pk} "Review 0" reached escalation level 1'
    )


def test_escalation_without_notify_raises_no_alert(make_task):
    WorkflowQueue.objects.filter(queue_name="triage").update(escalation_rules=[NOTIFY_RULES[1] | {"level": 1}])
    task = make_task("triage")
    WorkflowTask.objects.filter(pk=task.pk).update(due_date=timezone.now() - timedelta(hours=30))
    assert [o.tasks for o in escalate_overdue_tasks()] == [1]
    assert not Alert.objects.exists()


# --- Delivery ----------------------------------------------------------------------------------------------------


def test_slack_delivery_posts_the_summary_as_text(receiver):
    channel("ops-slack", webhook_url=f"{receiver.url}/services/T0/B0/secret")
    load("triage", 99)
    capacity_alerts_raise()
    delivery = AlertDelivery.objects.get()
    deliver(delivery)
    assert receiver.bodies == [{"text": "Queue triage is at 99.0 % of capacity (99 of 100)"}]
    assert receiver.requests[0]["path"] == "/services/T0/B0/secret"
    assert receiver.requests[0]["content_type"] == "application/json"
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("DELIVERED", 1, "")
    assert delivery.delivered_at is not None


def test_teams_delivery_posts_the_same_text_message(receiver):
    channel("ops-teams", "TEAMS", webhook_url=f"{receiver.url}/webhookb2/x")
    load("triage", 99)
    capacity_alerts_raise()
    deliver(AlertDelivery.objects.get())
    assert receiver.bodies == [{"text": Alert.objects.get().summary}]


def test_pagerduty_delivery_triggers_an_events_v2_event_deduplicated_by_the_alert(receiver, make_task):
    receiver.default_status = 202
    channel("on-call", "PAGERDUTY", routing_key="R0UT1NGKEY", events_url=f"{receiver.url}/v2/enqueue")
    task = make_task("triage", name="Check claim")
    sla_breach_alerts_raise(outcomes=[EscalationOutcome("triage", 1, 1, True, [task.pk])])
    delivery = AlertDelivery.objects.get()
    deliver(delivery)
    [body] = receiver.bodies
    assert receiver.requests[0]["path"] == "/v2/enqueue"
    assert body["routing_key"] == "R0UT1NGKEY"
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == f"sla:{task.pk}:1"
    payload = body["payload"]
    assert (payload["source"], payload["severity"]) == ("workflow", "critical")
    assert payload["summary"].startswith(f'SLA breach in queue triage: task #{task.pk} "Check claim"')
    assert payload["custom_details"]["task_id"] == task.pk and payload["custom_details"]["level"] == 1
    assert delivery.status == "DELIVERED"


def test_pagerduty_channel_defaults_to_the_public_events_endpoint():
    assert channel("on-call", "PAGERDUTY", routing_key="k").events_url == "https://events.pagerduty.com/v2/enqueue"


def test_a_failed_post_is_retried_and_the_second_attempt_delivers(receiver):
    receiver.answers = [500]
    channel("ops-slack", webhook_url=f"{receiver.url}/hook")
    load("triage", 99)
    capacity_alerts_raise()
    delivery = AlertDelivery.objects.get()
    result = deliver(delivery)
    assert result.successful()
    assert len(receiver.requests) == 2
    assert (delivery.status, delivery.attempts) == ("DELIVERED", 2)
    assert delivery.last_error == ""
    log = list(delivery.attempt_log.values_list("outcome", "error"))
    assert [outcome for outcome, _ in log] == ["RETRYING", "DELIVERED"]
    assert log[0][1].startswith("HTTP 500"), "the failed attempt keeps its error after the retry delivered"


def test_a_channel_that_keeps_failing_ends_failed_after_the_last_retry(receiver):
    receiver.default_status = 500
    channel("ops-slack", webhook_url=f"{receiver.url}/hook")
    load("triage", 99)
    capacity_alerts_raise()
    delivery = AlertDelivery.objects.get()
    result = deliver(delivery)
    assert result.failed()
    assert len(receiver.requests) == deliver_alert.max_retries + 1
    assert (delivery.status, delivery.attempts) == ("FAILED", deliver_alert.max_retries + 1)
    assert delivery.last_error.startswith("HTTP 500")
    assert delivery.delivered_at is None


def test_an_unreachable_webhook_is_recorded_as_a_failed_attempt(receiver):
    channel("ops-slack", webhook_url="http://127.0.0.1:9/hook")  # discard port: nothing listens
    load("triage", 99)
    capacity_alerts_raise()
    delivery = AlertDelivery.objects.get()
    deliver_alert.max_retries, saved = 0, deliver_alert.max_retries
    try:
        assert deliver(delivery).failed()
    finally:
        deliver_alert.max_retries = saved
    assert (delivery.status, delivery.attempts) == ("FAILED", 1)
    assert "URLError" in delivery.last_error


def test_a_delivered_alert_is_not_sent_again_when_its_job_runs_twice(receiver):
    channel("ops-slack", webhook_url=f"{receiver.url}/hook")
    load("triage", 99)
    capacity_alerts_raise()
    delivery = AlertDelivery.objects.get()
    deliver(delivery)
    deliver(delivery)
    assert len(receiver.requests) == 1 and delivery.attempts == 1


def test_email_channel_mails_its_recipients(settings, mailoutbox):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    channel("ops-mail", "EMAIL", email_recipients=["ops@example.org", "lead@example.org"])
    load("triage", 99)
    capacity_alerts_raise()
    delivery = AlertDelivery.objects.get()
    deliver(delivery)
    [mail] = mailoutbox
    assert mail.to == ["ops@example.org", "lead@example.org"]
    assert mail.subject == "[warning] Queue triage is at 99.0 % of capacity (99 of 100)"
    assert '"current_load": 99' in mail.body
    assert (delivery.status, delivery.attempts) == ("DELIVERED", 1)


# --- Admin -------------------------------------------------------------------------------------------------------


@pytest.fixture
def supervisor_client(client, supervisor_sam):
    client.force_login(supervisor_sam)
    return client


def test_admin_lists_the_alert_rules_with_their_last_firing(supervisor_client):
    load("triage", 99)
    capacity_alerts_raise(now=datetime(2026, 3, 4, 10, 15, tzinfo=UTC))
    body = supervisor_client.get(reverse("admin:tasks_alertrule_changelist")).content.decode()
    assert "SLA breach" in body and "Queue over capacity" in body
    assert "March 4, 2026, 10:15" in body
    assert "never" in body  # no SLA breach yet


def test_admin_shows_alerts_and_deliveries_read_only(supervisor_client, receiver):
    channel("ops-slack", webhook_url=f"{receiver.url}/hook")
    load("triage", 99)
    capacity_alerts_raise()
    alert = Alert.objects.get()
    response = supervisor_client.get(reverse("admin:tasks_alert_change", args=[alert.pk]))
    assert response.status_code == 200 and "capacity:triage:" in response.content.decode()
    assert (
        supervisor_client.get(reverse("admin:tasks_alertdelivery_changelist") + "?status__exact=PENDING").status_code
        == 200
    )
    assert supervisor_client.post(reverse("admin:tasks_alert_delete", args=[alert.pk])).status_code == 403


def test_admin_test_action_sends_to_the_channel(supervisor_client, receiver):
    slack = channel("ops-slack", webhook_url=f"{receiver.url}/hook")
    response = supervisor_client.post(
        reverse("admin:tasks_alertchannel_changelist"),
        {"action": "send_test_alert", "index": 0, "_selected_action": [slack.pk]},
        follow=True,
    )
    assert "Test alert sent to ops-slack." in response.content.decode()
    assert receiver.bodies == [{"text": "Test alert from the workflow system to channel ops-slack"}]


def test_channel_test_reports_what_went_wrong(receiver):
    receiver.default_status = 404
    assert alert_channel_test(channel=channel("ops-slack", webhook_url=f"{receiver.url}/gone")).startswith("HTTP 404")


def test_a_slack_channel_without_webhook_is_refused():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        AlertChannel(name="x", kind="SLACK").full_clean()
    assert "webhook_url" in error.value.message_dict


def test_admin_adds_a_channel_with_the_kinds_it_receives(supervisor_client):
    response = supervisor_client.post(
        reverse("admin:tasks_alertchannel_add"),
        {
            "name": "ops-mail",
            "kind": "EMAIL",
            "enabled": "on",
            "alert_kinds": ["SLA_BREACH"],
            "webhook_url": "",
            "email_recipients": "ops@example.org,lead@example.org",
            "routing_key": "",
            "events_url": "https://events.pagerduty.com/v2/enqueue",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    created = AlertChannel.objects.get(name="ops-mail")
    assert (created.alert_kinds, created.email_recipients) == (["SLA_BREACH"], ["ops@example.org", "lead@example.org"])


# --- Races -------------------------------------------------------------------------------------------------------


def test_two_capacity_monitors_at_once_raise_one_alert(committed_db, enqueued):
    from django.db import connections

    capacities = dict(WorkflowQueue.objects.values_list("queue_name", "max_capacity"))
    WorkflowQueue.objects.update(current_load=0)
    load("triage", 99)
    slack = channel("race-slack")
    hour = datetime(2031, 1, 1, 0, 30, tzinfo=UTC)  # an hour no other test raises in
    barrier, errors, raised = threading.Barrier(2), [], []

    def monitor():
        try:
            barrier.wait()
            raised.append(capacity_alerts_raise(now=hour))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    try:
        threads = [threading.Thread(target=monitor) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(raised) == [0, 1]
        assert Alert.objects.filter(dedupe_key="capacity:triage:2031-01-01T00").count() == 1
        assert len(enqueued) == 1 and AlertDelivery.objects.filter(channel=slack).count() == 1
    finally:
        AlertDelivery.objects.filter(channel=slack).delete()
        Alert.objects.filter(created_at=hour).delete()
        slack.delete()
        for name, capacity in capacities.items():
            WorkflowQueue.objects.filter(queue_name=name).update(max_capacity=capacity)
