"""Alerts: raise them for SLA breaches, tasks forecast to breach, and queues over capacity, once each, and deliver
them to their channels.

Raising is set-based and idempotent in the database: each alert has a dedupe_key (`sla:{task_id}:{level}`,
`capacity:{queue}:{YYYY-mm-ddTHH}` in UTC, `sla_risk:{task_id}:{due date epoch}`) under a UNIQUE constraint, and
one `INSERT ... ON CONFLICT DO NOTHING` inserts only the new ones. The same statement gives each new alert one PENDING
delivery per enabled channel that takes its kind, and an in-app notification to each supervisor of its queue
(tasks/notifications.py); the Celery job `workflow.deliver_alert` sends each delivery after commit, retrying with
backoff, and `alert_deliver` records every attempt. No network call happens inside a transaction.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from functools import partial

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.jobs import JOB_OPTIONS, TRANSIENT
from entitlements.row_scope import system_scope
from tasks.models import (
    Alert,
    AlertChannel,
    AlertChannelKind,
    AlertDelivery,
    AlertDeliveryAttempt,
    AlertDeliveryAttemptOutcome,
    AlertDeliveryStatus,
    AlertKind,
    AlertRule,
    AlertSeverity,
)

HTTP_TIMEOUT_SECONDS = 10
RESPONSE_EXCERPT_CHARS = 500  # of a refusing answer's body, kept in last_error
EMAIL_SUBJECT_CHARS = 200
PAGERDUTY_SUMMARY_CHARS = 1024  # the Events API's limit
WEBHOOK_SCHEMES = {"http", "https"}

# What a failed send raises: URLError/HTTPError, socket timeouts, refused connections and SMTPException are all
# OSError; a garbled HTTP answer is an HTTPException. The delivery job retries on these.
DELIVERY_ERRORS = (OSError, http.client.HTTPException)
# The delivery job also retries on failed sends, backing off 5 s, 10 s, 20 s … up to 5 minutes.
DELIVERY_BACKOFF_SECONDS = 5
DELIVERY_JOB_OPTIONS = {
    **JOB_OPTIONS,
    "autoretry_for": TRANSIENT + DELIVERY_ERRORS,
    "retry_backoff": DELIVERY_BACKOFF_SECONDS,
}

# Used when a rule row is missing (e.g. a test database flushed after migrating); the migration seeds the same.
DEFAULT_RULES = {
    AlertKind.SLA_BREACH: {
        "description": "A task reached an escalation level whose rule says notify.",
        "severity": AlertSeverity.CRITICAL,
        "threshold_percent": None,
    },
    AlertKind.CAPACITY: {
        "description": "A queue's load is over 90 % of its max_capacity (at most one alert per queue per hour).",
        "severity": AlertSeverity.WARNING,
        "threshold_percent": 90,
    },
    AlertKind.SLA_RISK: {
        "description": "A task not yet due is forecast to miss its due date (breach probability at least "
        "SLA_RISK_THRESHOLD; once per task and due date).",
        "severity": AlertSeverity.WARNING,
        "threshold_percent": None,
    },
}

# New alerts come back from the first CTE; the second gives each one delivery per enabled channel of its kind; the
# third tells the supervisors of the alert's queue in the app (tasks/notifications.py), linking to its task or queue.
DELIVERIES_SQL = """
), notified AS (
    INSERT INTO flowable.notifications (recipient_id, kind, text, link, created_at)
    SELECT s.user_id, raised.kind, left(raised.summary, 500),
           CASE WHEN raised.task_id IS NOT NULL THEN '/tasks/' || raised.task_id || '/'
                ELSE '/inbox/queues/?queue=' || raised.queue_name END,
           %(now)s
      FROM raised
      JOIN queues.workflow_queues q ON q.queue_name = raised.queue_name
     CROSS JOIN LATERAL entitlements.user_ids_with(q.queue_id, ARRAY['supervise'], %(now)s) AS s(user_id)
     UNION ALL
    -- A task forecast to miss its due date: whoever holds it is told too.
    SELECT t.assignee_id, 'TASK_AT_RISK', left(raised.summary, 500), '/tasks/' || raised.task_id || '/', %(now)s
      FROM raised
      JOIN flowable.workflow_tasks t ON t.task_id = raised.task_id
     WHERE raised.kind = 'SLA_RISK' AND t.assignee_id IS NOT NULL
), deliveries AS (
    INSERT INTO flowable.alert_deliveries (alert_id, channel_id, status, attempts, last_error, created_at)
    SELECT raised.alert_id, c.channel_id, 'PENDING', 0, '', %(now)s
      FROM raised
      JOIN flowable.alert_channels c ON c.enabled AND raised.kind = ANY(c.alert_kinds)
    RETURNING delivery_id
)
SELECT (SELECT count(*) FROM raised), ARRAY(SELECT delivery_id FROM deliveries ORDER BY delivery_id)
"""

CAPACITY_SQL = (
    """
WITH raised AS (
    INSERT INTO flowable.alerts (kind, dedupe_key, queue_name, task_id, level, severity, summary, details, created_at)
    SELECT 'CAPACITY', 'capacity:' || q.queue_name || ':' || %(hour)s, q.queue_name, NULL, NULL, %(severity)s,
           'Queue ' || q.queue_name || ' is at ' || round(100.0 * q.current_load / q.max_capacity, 1)
               || ' %% of capacity (' || q.current_load || ' of ' || q.max_capacity || ')',
           jsonb_build_object('queue', q.queue_name, 'current_load', q.current_load, 'max_capacity', q.max_capacity,
                              'utilisation_percent', round(100.0 * q.current_load / q.max_capacity, 1),
                              'threshold_percent', %(threshold)s),
           %(now)s
      FROM queues.workflow_queues q
     WHERE q.max_capacity > 0
       AND q.current_load::bigint * 100 > %(threshold)s::bigint * q.max_capacity
     ORDER BY q.queue_name
        ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING alert_id, kind, queue_name, task_id, summary
"""
    + DELIVERIES_SQL
)

SLA_BREACH_SQL = (
    """
WITH raised AS (
    INSERT INTO flowable.alerts (kind, dedupe_key, queue_name, task_id, level, severity, summary, details, created_at)
    SELECT 'SLA_BREACH', 'sla:' || t.task_id || ':' || o.level, o.queue, t.task_id, o.level, %(severity)s,
           'SLA breach in queue ' || o.queue || ': task #' || t.task_id || ' "' || t.name
               || '" reached escalation level ' || o.level
               || COALESCE(' (due ' || to_char(t.due_date AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC)', ''),
           jsonb_build_object('task_id', t.task_id, 'task_name', t.name, 'queue', o.queue,
                              'queue_now', t.queue_name, 'level', o.level, 'status', t.status,
                              'priority', t.priority, 'due_date', t.due_date,
                              'hours_overdue', round((EXTRACT(EPOCH FROM (%(now)s - t.due_date)) / 3600)::numeric, 1),
                              'process_instance_id', t.process_instance_id),
           %(now)s
      FROM unnest(%(task_ids)s::bigint[], %(levels)s::int[], %(queues)s::text[]) AS o(task_id, level, queue)
      JOIN flowable.workflow_tasks t ON t.task_id = o.task_id
     ORDER BY t.task_id, o.level
        ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING alert_id, kind, queue_name, task_id, summary
"""
    + DELIVERIES_SQL
)


SLA_RISK_SQL = (
    """
WITH raised AS (
    INSERT INTO flowable.alerts (kind, dedupe_key, queue_name, task_id, level, severity, summary, details, created_at)
    SELECT 'SLA_RISK', 'sla_risk:' || t.task_id || ':' || EXTRACT(EPOCH FROM t.due_date)::bigint, t.queue_name,
           t.task_id, NULL, %(severity)s,
           'SLA at risk in queue ' || t.queue_name || ': task #' || t.task_id || ' "' || t.name || '" is forecast to '
               || 'miss its due date ' || to_char(t.due_date AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC ('
               || round((100 * r.breach_probability)::numeric) || ' %%)',
           jsonb_build_object('task_id', t.task_id, 'task_name', t.name, 'queue', t.queue_name, 'status', t.status,
                              'priority', t.priority, 'due_date', t.due_date,
                              'breach_probability', round(r.breach_probability::numeric, 4),
                              'expected_completion_at', r.expected_completion_at,
                              'process_instance_id', t.process_instance_id),
           %(now)s
      FROM flowable.task_risks r
      JOIN flowable.workflow_tasks t ON t.task_id = r.task_id
     WHERE r.breach_probability >= %(threshold)s
       AND t.status IN ('OPEN', 'CLAIMED') AND t.due_date > %(now)s
     ORDER BY t.task_id
        ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING alert_id, kind, queue_name, task_id, summary
"""
    + DELIVERIES_SQL
)


def _rule(kind: AlertKind) -> AlertRule:
    rule, _ = AlertRule.objects.get_or_create(kind=kind, defaults=DEFAULT_RULES[kind])
    return rule


def _raise(sql: str, params: dict) -> int:
    """Run one raising statement; enqueue the new deliveries once the transaction commits. Returns new alerts."""
    # The system's write: it tells supervisors other than whoever runs it (tasks/notifications.py).
    with system_scope(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        alerts, delivery_ids = cursor.fetchone()
    if delivery_ids:
        for delivery_id in delivery_ids:
            transaction.on_commit(partial(deliver_alert.delay, delivery_id))
    return alerts


@transaction.atomic
def capacity_alerts_raise(*, now: datetime | None = None) -> int:
    """Alert on every queue whose load is over the rule's threshold, once per queue per UTC hour."""
    now = now or timezone.now()
    rule = _rule(AlertKind.CAPACITY)
    if not rule.enabled or rule.threshold_percent is None:
        return 0
    return _raise(
        CAPACITY_SQL,
        {
            "now": now,
            "hour": now.astimezone(UTC).strftime("%Y-%m-%dT%H"),
            "severity": rule.severity,
            "threshold": rule.threshold_percent,
        },
    )


@transaction.atomic
def sla_risk_alerts_raise(*, now: datetime | None = None) -> int:
    """Alert once per task and due date on tasks not yet due whose stored forecast (tasks/forecast/) reaches
    SLA_RISK_THRESHOLD: the warning before the breach. The forecast job calls it after each run."""
    rule = _rule(AlertKind.SLA_RISK)
    if not rule.enabled:
        return 0
    return _raise(
        SLA_RISK_SQL,
        {"now": now or timezone.now(), "severity": rule.severity, "threshold": settings.SLA_RISK_THRESHOLD},
    )


def sla_breach_alerts_raise(*, outcomes, now: datetime | None = None) -> int:
    """Alert once per task and level for escalations whose level says notify (the SLA sweep calls it).

    Runs inside the escalation's transaction, so alerts exist exactly when the escalation does.
    """
    task_ids, levels, queues = [], [], []
    for outcome in outcomes:
        if not outcome.notify:
            continue
        task_ids += outcome.task_ids
        levels += [outcome.level] * len(outcome.task_ids)
        queues += [outcome.queue] * len(outcome.task_ids)
    if not task_ids:
        return 0
    with transaction.atomic():
        rule = _rule(AlertKind.SLA_BREACH)
        if not rule.enabled:
            return 0
        return _raise(
            SLA_BREACH_SQL,
            {
                "now": now or timezone.now(),
                "severity": rule.severity,
                "task_ids": task_ids,
                "levels": levels,
                "queues": queues,
            },
        )


# --- Delivery ---------------------------------------------------------------------------------------------------


def _post_json(url: str, payload: dict) -> None:
    """POST JSON; anything but a 2xx answer raises (an HTTPError, hence retried)."""
    if urllib.parse.urlsplit(url).scheme not in WEBHOOK_SCHEMES:
        raise ValueError(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, cls=DjangoJSONEncoder).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "workflow-alerts"},
    )
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, f"answered {response.status}", response.headers, None)
        response.read()


def _send(channel: AlertChannel, alert: Alert) -> None:
    if channel.kind in (AlertChannelKind.SLACK, AlertChannelKind.TEAMS):
        # Teams' incoming webhooks take the same minimal {"text": ...} message as Slack's.
        _post_json(channel.webhook_url, {"text": alert.summary})
    elif channel.kind == AlertChannelKind.PAGERDUTY:
        _post_json(
            channel.events_url,
            {
                "routing_key": channel.routing_key,
                "event_action": "trigger",
                "dedup_key": alert.dedupe_key,
                "payload": {
                    "summary": alert.summary[:PAGERDUTY_SUMMARY_CHARS],
                    "source": "workflow",
                    "severity": alert.severity,
                    "component": alert.queue_name,
                    "group": alert.kind,
                    "timestamp": alert.created_at.isoformat(),
                    "custom_details": alert.details,
                },
            },
        )
    elif channel.kind == AlertChannelKind.EMAIL:
        body = alert.summary + "\n\n" + json.dumps(alert.details, indent=2, sort_keys=True, cls=DjangoJSONEncoder)
        send_mail(
            subject=f"[{alert.severity}] {alert.summary}"[:EMAIL_SUBJECT_CHARS],
            message=body,
            from_email=None,
            recipient_list=list(channel.email_recipients),
            fail_silently=False,
        )
    else:
        raise ValueError(f"unknown channel kind {channel.kind!r}")


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        try:
            excerpt = error.read(RESPONSE_EXCERPT_CHARS).decode("utf-8", "replace")
        except Exception:  # the body is a courtesy; the status is what matters
            excerpt = ""
        return f"HTTP {error.code}: {excerpt or error.reason}"
    return f"{type(error).__name__}: {error}"


ATTEMPT_OUTCOMES = {
    AlertDeliveryStatus.DELIVERED: AlertDeliveryAttemptOutcome.DELIVERED,
    AlertDeliveryStatus.PENDING: AlertDeliveryAttemptOutcome.RETRYING,
    AlertDeliveryStatus.FAILED: AlertDeliveryAttemptOutcome.FAILED,
}


@transaction.atomic
def _record(delivery_id: int, *, status: str, error: str = "", delivered: bool = False) -> None:
    """Append the attempt to the delivery's log and bring the delivery's state up to it, together."""
    now = timezone.now()
    AlertDeliveryAttempt.objects.create(
        delivery_id=delivery_id, outcome=ATTEMPT_OUTCOMES[status], error=error, attempted_at=now
    )
    AlertDelivery.objects.filter(pk=delivery_id).update(
        status=status,
        attempts=F("attempts") + 1,
        last_error=error,
        last_attempt_at=now,
        delivered_at=now if delivered else None,
    )


def alert_deliver(*, delivery_id: int, final: bool) -> str:
    """Send one delivery once and record the attempt. Must run outside any transaction (it calls the network).

    On a retryable failure the attempt is recorded (FAILED when `final`, else still PENDING) and the error is
    raised again for the job to retry. A misconfigured channel fails at once: retrying cannot help.
    Returns the delivery's status.
    """
    delivery = AlertDelivery.objects.select_related("alert", "channel").get(pk=delivery_id)
    if delivery.status != AlertDeliveryStatus.PENDING:
        return delivery.status  # a redelivered job message: already settled
    if not delivery.channel.enabled:
        _record(delivery_id, status=AlertDeliveryStatus.FAILED, error="channel disabled before delivery")
        return AlertDeliveryStatus.FAILED
    try:
        _send(delivery.channel, delivery.alert)
    except DELIVERY_ERRORS as error:
        status = AlertDeliveryStatus.FAILED if final else AlertDeliveryStatus.PENDING
        _record(delivery_id, status=status, error=_describe(error))
        raise
    except ValueError as error:
        _record(delivery_id, status=AlertDeliveryStatus.FAILED, error=_describe(error))
        return AlertDeliveryStatus.FAILED
    _record(delivery_id, status=AlertDeliveryStatus.DELIVERED, delivered=True)
    return AlertDeliveryStatus.DELIVERED


@shared_task(name="workflow.deliver_alert", bind=True, **DELIVERY_JOB_OPTIONS)
def deliver_alert(self, delivery_id: int) -> dict:
    """The Celery job each new delivery is enqueued as (after its alert's commit)."""
    status = alert_deliver(delivery_id=delivery_id, final=self.request.retries >= self.max_retries)
    return {"delivery": delivery_id, "status": status, "attempt": self.request.retries + 1}


def alert_channel_test(*, channel: AlertChannel) -> str:
    """Send a test message to a channel now (admin's "test channel"); returns "" or what went wrong."""
    probe = Alert(
        kind=AlertKind.CAPACITY,
        dedupe_key=f"test:{channel.pk}:{timezone.now():%Y%m%dT%H%M%S}",
        queue_name="-",
        severity=AlertSeverity.INFO,
        created_at=timezone.now(),
        summary=f"Test alert from the workflow system to channel {channel.name}",
        details={"test": True},
    )
    try:
        _send(channel, probe)
    except (*DELIVERY_ERRORS, ValueError) as error:
        return _describe(error)
    return ""
