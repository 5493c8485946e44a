"""The SLA-risk job at scale (tasks/forecast/services.py): the same forecasts as reading the whole queue at once,
only moved forecasts written, a queue read in chunks with a fixed number of statements, and an on-demand forecast
that never waits for a job."""

import threading
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from entitlements.row_scope import system_scope
from queues.calendar import add_business_hours, business_hours_between
from queues.models import WorkflowQueue
from queues.selectors import business_calendar_for
from tasks.forecast import services
from tasks.forecast.model import MAX_FORECAST_HOURS, ActiveTask, forecast_queue
from tasks.forecast.services import (
    RATE_WINDOW,
    _Row,
    hours_left_today,
    queue_rates,
    queue_servers,
    task_forecast_refresh,
    task_risks_refresh,
)
from tasks.models import TaskRisk, WorkflowTask

from .test_risk_refresh import LAST_WEEK, NOW, _completed

# What the job read before it streamed: every active task and every completion of the window, in one query.
WHOLE_QUEUE_SQL = """
SELECT task_id, queue_name, priority, task_definition_key, assignee_id, status, due_date, created_at, claimed_at,
       completed_at
  FROM flowable.workflow_tasks
 WHERE queue_name = %(queue)s AND (status IN ('OPEN', 'CLAIMED') OR (status = 'COMPLETED' AND completed_at >= %(since)s))
"""


@pytest.fixture
def intake(demo_org):
    return WorkflowQueue.objects.get(queue_name="intake")


@pytest.fixture
def scope():
    with system_scope():
        yield


def _whole_queue_forecasts(queue, *, now):
    """The previous job's arithmetic: the queue's rows all in memory, forecast_queue over the list."""
    calendar = business_calendar_for(queue=queue)
    since = now - RATE_WINDOW
    with connection.cursor() as cursor:
        cursor.execute(WHOLE_QUEUE_SQL, {"queue": queue.queue_name, "since": since})
        rows = [_Row(*row) for row in cursor.fetchall()]
    arrivals = Counter(row.priority for row in rows if row.created_at >= since)
    tasks = [
        ActiveTask(
            task_id=row.task_id,
            priority=row.priority,
            order=(row.created_at, row.task_id),
            task_type=row.task_type,
            hours_to_due=business_hours_between(now, row.due_date, calendar) if row.due_date else None,
            assignee_id=row.assignee_id if row.status == "CLAIMED" else None,
            hours_in_service=business_hours_between(row.claimed_at, now, calendar) if row.status == "CLAIMED" else 0,
        )
        for row in rows
        if row.status in ("OPEN", "CLAIMED")
    ]
    forecasts = forecast_queue(
        rates=queue_rates(rows=rows, arrivals=dict(arrivals), calendar=calendar, now=now),
        servers=queue_servers(queue=queue, rows=rows, calendar=calendar, now=now),
        tasks=tasks,
        hours_left_today=hours_left_today(calendar=calendar, now=now),
    )
    return {
        task_id: (
            f.breach_probability,
            None if f.expected_hours >= MAX_FORECAST_HOURS else add_business_hours(now, f.expected_hours, calendar),
        )
        for task_id, f in forecasts.items()
    }


def _open(queue, n, *, calendar, priority=50, due_hours=8.0, created=None):
    return WorkflowTask.objects.create(
        queue=queue,
        name=f"open {n}",
        task_definition_key="review",
        priority=priority,
        created_at=created or NOW - timedelta(minutes=n),
        due_date=add_business_hours(NOW, due_hours, calendar),
    )


@pytest.fixture
def busy_intake(intake, caseworker_alice, fraud_investigator_bob, scope):
    """A week of completions by two caseworkers, one task held now, 24 OPEN tasks over three priorities."""
    calendar = business_calendar_for(queue=intake)
    for day in range(5):
        for user, hours in ((caseworker_alice, 1.0), (caseworker_alice, 2.5), (fraud_investigator_bob, 1.5)):
            _completed(intake, user, claimed_at=LAST_WEEK + timedelta(days=day), hours=hours, calendar=calendar)
    _completed(intake, fraud_investigator_bob, claimed_at=NOW - timedelta(minutes=50), hours=0.5, calendar=calendar)
    WorkflowTask.objects.create(
        queue=intake,
        name="held",
        task_definition_key="review",
        status="CLAIMED",
        assignee=caseworker_alice,
        claimed_at=NOW - timedelta(minutes=20),
        created_at=NOW - timedelta(hours=1),
        due_date=add_business_hours(NOW, 3, calendar),
    )
    for n in range(24):
        _open(intake, n, calendar=calendar, priority=(30, 50, 80)[n % 3], due_hours=2.0 + n)
    return intake


def test_the_chunked_job_stores_the_forecasts_of_the_whole_queue_computation(busy_intake, monkeypatch):
    expected = _whole_queue_forecasts(busy_intake, now=NOW)
    monkeypatch.setattr(services, "CHUNK_SIZE", 5)

    refresh = task_risks_refresh(queue_name="intake", now=NOW)

    stored = {
        r.task_id: (r.breach_probability, r.expected_completion_at)
        for r in TaskRisk.objects.filter(queue_name="intake")
    }
    assert set(stored) == set(expected) and refresh.tasks == len(expected) == 25
    for task_id, (probability, expected_at) in expected.items():
        assert stored[task_id][0] == pytest.approx(probability, abs=1e-9)
        assert stored[task_id][1] == expected_at
    assert len({p for p, _ in stored.values()}) > 3  # the queue's tasks differ: the comparison compares something


def test_a_second_run_writes_only_the_forecasts_that_moved(busy_intake):
    first = task_risks_refresh(queue_name="intake", now=NOW)
    assert first.written == 25

    assert task_risks_refresh(queue_name="intake", now=NOW).written == 0

    calendar = business_calendar_for(queue=busy_intake)
    safest = TaskRisk.objects.filter(queue_name="intake").order_by("breach_probability").first()
    assert safest.breach_probability < 0.5
    task = WorkflowTask.objects.get(pk=safest.task_id)
    WorkflowTask.objects.filter(pk=task.pk).update(due_date=add_business_hours(NOW, 0.5, calendar))
    assert task_risks_refresh(queue_name="intake", now=NOW).written == 1
    assert TaskRisk.objects.get(task_id=task.task_id).breach_probability >= 0.5


def test_a_queue_is_read_and_written_a_chunk_at_a_time(intake, scope, monkeypatch):
    calendar = business_calendar_for(queue=intake)
    for n in range(35):
        _open(intake, n, calendar=calendar)
    monkeypatch.setattr(services, "CHUNK_SIZE", 10)
    chunks = []
    write = services._write_changed
    monkeypatch.setattr(services, "_write_changed", lambda **kw: chunks.append(len(kw["forecasts"])) or write(**kw))

    refresh = task_risks_refresh(queue_name="intake", now=NOW)

    assert refresh.tasks == 35 and TaskRisk.objects.filter(queue_name="intake").count() == 35
    assert [c for c in chunks if c] == [10, 10, 10, 5]


def _statements(queue, *, tasks: int, monkeypatch) -> int:
    calendar = business_calendar_for(queue=queue)
    WorkflowTask.objects.filter(queue=queue).delete()
    TaskRisk.objects.all().delete()
    WorkflowTask.objects.bulk_create(
        WorkflowTask(
            queue=queue,
            name=f"open {n}",
            priority=n % 7,
            created_at=NOW - timedelta(minutes=n),
            due_date=add_business_hours(NOW, 10, calendar),
        )
        for n in range(tasks)
    )
    monkeypatch.setattr(services, "CHUNK_SIZE", 10_000)
    with CaptureQueriesContext(connection) as captured:
        assert task_risks_refresh(queue_name=queue.queue_name, now=NOW).tasks == tasks
    return len(captured.captured_queries)


def test_the_jobs_statements_do_not_grow_with_the_queue(intake, scope, monkeypatch):
    assert _statements(intake, tasks=50, monkeypatch=monkeypatch) == _statements(
        intake, tasks=500, monkeypatch=monkeypatch
    )


def test_the_on_demand_forecast_does_not_wait_for_a_job_on_its_queue(
    intake, caseworker_alice, scope, admin_connection, test_database_url
):
    calendar = business_calendar_for(queue=intake)
    tasks = [_open(intake, n, calendar=calendar, due_hours=4.0 + n) for n in range(4)]
    task_risks_refresh(queue_name="intake", now=NOW)
    by_job = {r.task_id: r.breach_probability for r in TaskRisk.objects.filter(queue_name="intake")}
    TaskRisk.objects.filter(task_id=tasks[2].task_id).delete()

    # Another session is a job in the middle of the queue: it holds the queue's lock (and the lock a refresh took
    # before) inside an open transaction.
    holding, release = threading.Event(), threading.Event()

    def job():
        with psycopg.connect(test_database_url) as other:
            other.execute("SELECT pg_advisory_xact_lock(hashtext('flowable.task_risks'))")
            other.execute("SELECT pg_advisory_lock(hashtext('flowable.task_risks'), hashtext('intake'))")
            holding.set()
            release.wait()
            other.execute("SELECT pg_advisory_unlock(hashtext('flowable.task_risks'), hashtext('intake'))")

    thread = threading.Thread(target=job)
    thread.start()
    try:
        assert holding.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")  # waiting would fail the test, not slow it
        task = task_forecast_refresh(user=caseworker_alice, task_id=tasks[2].task_id, now=NOW)
        # A second job passes the held queue by instead of queueing behind it.
        assert task_risks_refresh(queue_name="intake", now=NOW).tasks == 0
    finally:
        release.set()
        thread.join()
    assert task.risk.breach_probability == pytest.approx(by_job[tasks[2].task_id], abs=1e-9)
