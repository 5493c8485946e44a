"""SLA-risk forecasts from live rates (tasks/forecast/services.py): rates from a known history, the stored risks."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from entitlements.row_scope import system_scope
from queues.calendar import add_business_hours
from queues.models import WorkflowQueue
from queues.selectors import business_calendar_for
from tasks.forecast.services import RATE_WINDOW, _queue_reads, hours_left_today, queue_rates, task_risks_refresh
from tasks.models import TaskRisk, WorkflowTask


def _next_wednesday_afternoon() -> datetime:
    # In business hours of the demo calendar (London, Mon-Fri 09:00-17:00), after the demo's role assignments
    # start (they are valid from when the test database was seeded).
    today = timezone.now().astimezone(UTC).date()
    day = today + timedelta(days=(2 - today.weekday()) % 7 or 7)
    return datetime(day.year, day.month, day.day, 14, 0, tzinfo=UTC)


NOW = _next_wednesday_afternoon()
LAST_WEEK = NOW - timedelta(days=7, hours=4)  # Wednesday 10:00


@pytest.fixture
def intake(demo_org):
    return WorkflowQueue.objects.get(queue_name="intake")


@pytest.fixture
def scope():
    with system_scope():
        yield


def _completed(queue, user, *, claimed_at, hours, calendar, priority=50):
    return WorkflowTask.objects.create(
        queue=queue,
        name="done",
        task_definition_key="review",
        status="COMPLETED",
        priority=priority,
        assignee=user,
        created_at=claimed_at,
        claimed_at=claimed_at,
        completed_at=add_business_hours(claimed_at, hours, calendar),
    )


def test_rates_are_measured_from_the_completed_history(intake, caseworker_alice, scope):
    calendar = business_calendar_for(queue=intake)
    for day in range(5):
        for hours in (1.0, 3.0):
            _completed(
                intake, caseworker_alice, claimed_at=LAST_WEEK + timedelta(days=day), hours=hours, calendar=calendar
            )

    rows, arrivals = _queue_reads(queue_name="intake", since=NOW - RATE_WINDOW)
    rates = queue_rates(rows=rows, arrivals=arrivals, calendar=calendar, now=NOW)

    assert rates.service_hours_by_user[caseworker_alice.pk] == pytest.approx(2.0)
    assert rates.service_by_type["review"] == pytest.approx((2.0, 0.5))
    # Alice alone worked it on each of those days, at one task per two hours.
    assert rates.usual_total_rate == pytest.approx(0.5)
    # Ten arrivals over the window's business hours (four weeks of 40 hours, less what the calendar closes).
    assert 10 / 170 < rates.arrivals_by_priority[50] < 10 / 140


def test_refresh_stores_a_forecast_per_active_task_and_the_crowded_urgent_one_is_at_risk(
    intake, caseworker_alice, scope
):
    calendar = business_calendar_for(queue=intake)
    for day in range(5):
        _completed(intake, caseworker_alice, claimed_at=LAST_WEEK + timedelta(days=day), hours=1.0, calendar=calendar)
    WorkflowTask.objects.create(
        queue=intake,
        name="held",
        status="CLAIMED",
        assignee=caseworker_alice,
        claimed_at=NOW - timedelta(minutes=20),
        created_at=NOW - timedelta(hours=1),
        due_date=add_business_hours(NOW, 40, calendar),
    )
    ahead = [
        WorkflowTask.objects.create(queue=intake, name=f"ahead {n}", priority=80, created_at=NOW - timedelta(hours=2))
        for n in range(6)
    ]
    urgent = WorkflowTask.objects.create(
        queue=intake, name="urgent", priority=50, created_at=NOW, due_date=add_business_hours(NOW, 2, calendar)
    )
    relaxed = WorkflowTask.objects.create(
        queue=intake, name="relaxed", priority=50, created_at=NOW, due_date=add_business_hours(NOW, 80, calendar)
    )

    refresh = task_risks_refresh(queue_name="intake", now=NOW)

    risks = {r.task_id: r for r in TaskRisk.objects.filter(queue_name="intake")}
    assert set(risks) == {t.task_id for t in WorkflowTask.objects.filter(queue=intake, status__in=["OPEN", "CLAIMED"])}
    assert refresh.tasks == len(ahead) + 3
    assert risks[urgent.task_id].breach_probability >= 0.5
    assert risks[relaxed.task_id].breach_probability < 0.1
    assert risks[urgent.task_id].expected_completion_at > NOW
    assert refresh.at_risk >= 1


def test_working_hours_left_today_follow_the_calendar(intake):
    calendar = business_calendar_for(queue=intake)
    closing = NOW.astimezone(calendar.time_zone).replace(hour=17, minute=0)  # the demo calendar closes at 17:00
    assert hours_left_today(calendar=calendar, now=NOW) == pytest.approx((closing - NOW).total_seconds() / 3600)
    assert hours_left_today(calendar=None, now=NOW) is None


def test_refresh_replaces_the_forecasts_of_tasks_no_longer_active(intake, caseworker_alice, scope):
    task = WorkflowTask.objects.create(queue=intake, name="soon done", created_at=NOW, due_date=NOW + timedelta(days=3))
    task_risks_refresh(queue_name="intake", now=NOW)
    assert TaskRisk.objects.filter(task_id=task.task_id).exists()

    WorkflowTask.objects.filter(pk=task.pk).update(status="CANCELLED")
    task_risks_refresh(queue_name="intake", now=NOW)

    assert not TaskRisk.objects.filter(task_id=task.task_id).exists()


def test_the_command_forecasts_every_queue(intake, scope):
    now = timezone.now()
    WorkflowTask.objects.create(queue=intake, name="open", created_at=now, due_date=now + timedelta(days=3))
    call_command("forecast_sla_risk", stdout=open("/dev/null", "w"))
    assert TaskRisk.objects.filter(queue_name="intake").count() == 1


def test_the_beat_job_forecasts_and_raises_the_risk_alerts(intake, monkeypatch):
    from tasks.jobs import forecast_sla_risk
    from tasks.models import Alert
    from tasks.sla.alerts import deliver_alert

    monkeypatch.setattr(deliver_alert, "delay", lambda delivery_id: None)
    now = timezone.now()
    # Nobody has worked the queue lately: a task due soon cannot be reached in time.
    task = WorkflowTask.objects.create(queue=intake, name="stuck", created_at=now, due_date=now + timedelta(minutes=30))

    result = forecast_sla_risk.apply().get()

    assert result["tasks"] >= 1 and result["at_risk"] >= 1 and result["alerts"] >= 1
    assert TaskRisk.objects.get(task_id=task.task_id).breach_probability == 1.0
    assert Alert.objects.filter(kind="SLA_RISK", task_id=task.task_id).exists()


def test_beat_runs_the_forecast_every_five_minutes(db):
    from django_celery_beat.models import PeriodicTask

    job = PeriodicTask.objects.get(task="workflow.forecast_sla_risk")
    assert (job.enabled, job.interval.every, job.interval.period) == (True, 5, "minutes")
