"""SLA-risk forecasts from live rates, stored per task (flowable.task_risks) by the beat job or on demand.

Per queue, a fixed number of statements whatever its size (bench/forecast_job.py measures it at 1M tasks):
- rates: arrivals by priority as one SQL count per priority; service (claim to complete) from the queue's last
  SAMPLE_COMPLETIONS completions in RATE_WINDOW, converted to business hours in Python. A sample and not SQL moments
  on wall-clock time: the conversion needs the queue's calendar (a task claimed at 16:50 and completed at 09:10 took
  20 minutes, not 16 hours; no constant share of open hours gets that right), per-caseworker means and the team of
  each past day come from the same rows, and 2,000 recent completions bound the work while giving a mean whose error
  is far below the spread between caseworkers. Below the cap the rates are exactly those of all the window's rows;
- the caseworkers working the queue now (active in the last ACTIVITY_BUSINESS_HOURS or holding one of its tasks,
  with capacity) and the team that usually works it on a day, from the same sample and the CLAIMED tasks;
- then its OPEN tasks in claim-next's order, CHUNK_SIZE at a time by keyset over idx_workflow_tasks_claim_open
  (each chunk its own short statement: no cursor or transaction stays open across the queue, so the job never holds
  back vacuum's horizon, which slows claim-next everywhere), each task forecast from its position
  (tasks/forecast/model.py, the functions bench/forecast.py backtests);
- per chunk one INSERT ... ON CONFLICT that writes only the rows that changed meaningfully (CHANGED_SQL): unchanged
  forecasts cost neither a row version nor WAL; then one DELETE of the queue's forecasts of tasks no longer in it.

Forecasts go to a side table, not to the task rows (tasks/models.py: TaskRisk says why): the job never locks a task
claim-next could take. A task the queue cannot reach (nobody works it) gets probability 1 and no expected time.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.errors import Conflict
from entitlements.access import users_with
from entitlements.row_scope import system_scope
from queues.calendar import add_business_hours, business_hours_between
from queues.models import WorkflowQueue
from queues.selectors import business_calendar_for

from ..models import ACTIVE_TASK_STATUSES, WorkflowTask
from ..selectors import task_for_user
from .model import (
    MAX_FORECAST_HOURS,
    QueueRates,
    TaskForecast,
    in_service_forecast,
    queue_state,
    waiting_forecast,
)

RATE_WINDOW = timedelta(weeks=4)
ACTIVITY_BUSINESS_HOURS = 1.0
# With fewer completions than this in the window, a rate is too noisy: the queue gets the defaults below.
MIN_COMPLETIONS = 5
DEFAULT_SERVICE_HOURS = 1.0
DEFAULT_SERVICE_CV = 1.0

# The job's unit of reading and writing: OPEN tasks per keyset read, forecasts per upsert.
CHUNK_SIZE = 2000
# The most recent completions of a queue its service rates are measured on.
SAMPLE_COMPLETIONS = 2000
# A stored forecast is rewritten only when it moved this much (or crossed SLA_RISK_THRESHOLD, or changed queue):
# computed_at says when its values were last written.
CHANGE_PROBABILITY = 0.01
CHANGE_EXPECTED_SECONDS = 3600

COLUMNS = "task_id, queue_name, priority, task_definition_key, assignee_id, status, due_date, created_at, claimed_at, completed_at"

COMPLETIONS_SQL = f"""
SELECT {COLUMNS}
  FROM flowable.workflow_tasks
 WHERE status = 'COMPLETED' AND completed_at >= %(since)s AND queue_name = %(queue)s
 ORDER BY completed_at DESC
 LIMIT %(limit)s
"""

# A task created in the window and still active, or completed (necessarily in the window, after its creation).
ARRIVALS_SQL = """
SELECT priority, count(*)
  FROM flowable.workflow_tasks
 WHERE queue_name = %(queue)s AND status IN ('OPEN', 'CLAIMED', 'COMPLETED') AND created_at >= %(since)s
 GROUP BY priority
"""

CLAIMED_SQL = f"SELECT {COLUMNS} FROM flowable.workflow_tasks WHERE queue_name = %(queue)s AND status = 'CLAIMED'"

# Claim-next's order, a chunk at a time after the last task read: the rest of its priority, then lower ones.
# Two range reads of idx_workflow_tasks_claim_open (a mixed-direction row comparison could not use it).
# Claim-next's order is by effective priority (the priority plus any aging boost); a task's place in it is what the
# forecast conditions on, and later arrivals (boost 0) jump ahead of it when their priority is above its effective one.
OPEN_SAME_PRIORITY_SQL = """
SELECT task_id, effective_priority, task_definition_key, due_date, created_at
  FROM flowable.workflow_tasks
 WHERE queue_name = %(queue)s AND status = 'OPEN' AND effective_priority = %(priority)s
   AND (created_at, task_id) > (%(created_at)s, %(task_id)s)
 ORDER BY created_at, task_id
 LIMIT %(limit)s
"""
OPEN_LOWER_PRIORITY_SQL = """
SELECT task_id, effective_priority, task_definition_key, due_date, created_at
  FROM flowable.workflow_tasks
 WHERE queue_name = %(queue)s AND status = 'OPEN' AND effective_priority < %(priority)s
 ORDER BY effective_priority DESC, created_at, task_id
 LIMIT %(limit)s
"""

# OPEN tasks claim-next takes before the given one.
AHEAD_SQL = """
SELECT (SELECT count(*) FROM flowable.workflow_tasks
         WHERE queue_name = %(queue)s AND status = 'OPEN' AND effective_priority > %(priority)s)
     + (SELECT count(*) FROM flowable.workflow_tasks
         WHERE queue_name = %(queue)s AND status = 'OPEN' AND effective_priority = %(priority)s
           AND (created_at, task_id) < (%(created_at)s, %(task_id)s))
"""

# The chunk's forecasts, keeping only new rows and those that moved: unchanged ones are neither locked nor written.
CHANGED_SQL = """
WITH new AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(queues)s::text[], %(probabilities)s::float8[],
                         %(expected)s::timestamptz[])
        AS n(task_id, queue_name, breach_probability, expected_completion_at)
)
INSERT INTO flowable.task_risks (task_id, queue_name, breach_probability, expected_completion_at, computed_at)
SELECT new.task_id, new.queue_name, new.breach_probability, new.expected_completion_at, %(now)s
  FROM new LEFT JOIN flowable.task_risks old ON old.task_id = new.task_id
 WHERE old.task_id IS NULL
    OR old.queue_name <> new.queue_name
    OR abs(old.breach_probability - new.breach_probability) >= %(change_probability)s
    OR (old.breach_probability >= %(threshold)s) <> (new.breach_probability >= %(threshold)s)
    OR (old.expected_completion_at IS NULL) <> (new.expected_completion_at IS NULL)
    OR abs(extract(epoch FROM old.expected_completion_at - new.expected_completion_at)) >= %(change_seconds)s
ON CONFLICT (task_id) DO UPDATE
   SET queue_name = EXCLUDED.queue_name, breach_probability = EXCLUDED.breach_probability,
       expected_completion_at = EXCLUDED.expected_completion_at, computed_at = EXCLUDED.computed_at
"""

UPSERT_ONE_SQL = """
INSERT INTO flowable.task_risks (task_id, queue_name, breach_probability, expected_completion_at, computed_at)
VALUES (%(task_id)s, %(queue)s, %(probability)s, %(expected)s, %(now)s)
ON CONFLICT (task_id) DO UPDATE
   SET queue_name = EXCLUDED.queue_name, breach_probability = EXCLUDED.breach_probability,
       expected_completion_at = EXCLUDED.expected_completion_at, computed_at = EXCLUDED.computed_at
"""

# Forecasts of the queue's tasks that are no longer active in it (completed, cancelled, moved out), a chunk of the
# queue's forecasts at a time (idx_task_risks_queue): a task_id range on both sides keeps each chunk's anti-join
# bounded whatever the planner thinks of the tables' sizes.
STALE_CHUNK_SQL = """
SELECT task_id FROM flowable.task_risks
 WHERE queue_name = %(queue)s AND task_id > %(after)s
 ORDER BY task_id
 LIMIT %(limit)s
"""
STALE_SQL = """
DELETE FROM flowable.task_risks r
 WHERE r.queue_name = %(queue)s AND r.task_id > %(after)s AND r.task_id <= %(last)s
   AND NOT EXISTS (SELECT FROM flowable.workflow_tasks t
                    WHERE t.task_id = r.task_id AND t.task_id > %(after)s AND t.task_id <= %(last)s
                      AND t.queue_name = %(queue)s AND t.status IN ('OPEN', 'CLAIMED'))
"""


@dataclass(frozen=True)
class _Row:
    task_id: int
    queue_name: str
    priority: int
    task_type: str
    assignee_id: int | None
    status: str
    due_date: datetime | None
    created_at: datetime
    claimed_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class RiskRefresh:
    queues: int
    tasks: int
    at_risk: int
    written: int = 0  # forecasts inserted or rewritten (the rest had not moved), plus stale ones deleted


def _fetch(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _queue_reads(*, queue_name: str, since: datetime) -> tuple[list[_Row], dict[int, int]]:
    """The queue's sampled completions and CLAIMED tasks (as rows), and its arrivals since `since` by priority."""
    params = {"queue": queue_name, "since": since, "limit": SAMPLE_COMPLETIONS}
    rows = [_Row(*row) for row in _fetch(COMPLETIONS_SQL, params) + _fetch(CLAIMED_SQL, params)]
    return rows, dict(_fetch(ARRIVALS_SQL, params))


def _mean_cv(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    cv = statistics.pstdev(values) / mean if len(values) > 1 and mean > 0 else DEFAULT_SERVICE_CV
    return mean, cv


def queue_rates(*, rows: list[_Row], arrivals: dict[int, int], calendar, now: datetime) -> QueueRates:
    """A queue's rates from its rows (recent completions since now - RATE_WINDOW; active ones are ignored) and the
    tasks created in the window by priority (`arrivals`), in business hours."""
    since = now - RATE_WINDOW
    span = max(business_hours_between(since, now, calendar), 1.0)
    by_user: dict[int, list[float]] = defaultdict(list)
    by_type: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.status == "COMPLETED" and row.claimed_at is not None and row.assignee_id is not None:
            hours = business_hours_between(row.claimed_at, row.completed_at, calendar)
            by_user[row.assignee_id].append(hours)
            by_type[row.task_type].append(hours)
    every = [h for hours in by_type.values() for h in hours]
    if len(every) < MIN_COMPLETIONS:
        mean, cv = DEFAULT_SERVICE_HOURS, DEFAULT_SERVICE_CV
    else:
        mean, cv = _mean_cv(every)
    return QueueRates(
        usual_total_rate=_usual_total_rate(rows=rows, by_user=by_user, calendar=calendar, since=since, now=now),
        arrivals_by_priority={priority: count / span for priority, count in arrivals.items()},
        service_hours_by_user={user: statistics.fmean(h) for user, h in by_user.items() if h},
        service_by_type={key: _mean_cv(h) for key, h in by_type.items() if len(h) >= MIN_COMPLETIONS},
        service_hours=mean,
        service_cv=cv,
    )


def _local_date(moment: datetime, calendar) -> date:
    return moment.astimezone(calendar.time_zone if calendar is not None else UTC).date()


def _usual_total_rate(*, rows, by_user, calendar, since: datetime, now: datetime) -> float | None:
    """The summed service rate of the caseworkers active on the queue on a past day, averaged over the window's
    days with activity (today excluded): who usually works it, for the part of a wait beyond today."""
    active_by_day: dict[date, set[int]] = defaultdict(set)
    for row in rows:
        if row.status != "COMPLETED" or row.assignee_id is None:
            continue
        for moment in (row.claimed_at, row.completed_at):
            if moment is not None and since <= moment < now:
                active_by_day[_local_date(moment, calendar)].add(row.assignee_id)
    active_by_day.pop(_local_date(now, calendar), None)
    if not active_by_day or not by_user:
        return None
    rate = {user: 1 / max(statistics.fmean(hours), 1e-6) for user, hours in by_user.items() if hours}
    default = statistics.fmean(rate.values())
    return statistics.fmean(sum(rate.get(user, default) for user in users) for users in active_by_day.values())


def hours_left_today(*, calendar, now: datetime) -> float | None:
    """Working hours left in the calendar's local day; None round the clock (no calendar: no day's end)."""
    if calendar is None:
        return None
    local = now.astimezone(calendar.time_zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=calendar.time_zone)
    return business_hours_between(now, midnight, calendar)


def queue_servers(*, queue: WorkflowQueue, rows: list[_Row], calendar, now: datetime) -> list[int]:
    """Caseworkers working the queue now: allowed to work it, with capacity, and active on it in the last
    ACTIVITY_BUSINESS_HOURS or holding one of its tasks."""
    active: set[int] = set()
    for row in rows:
        if row.assignee_id is None:
            continue
        if row.status == "CLAIMED":
            active.add(row.assignee_id)
            continue
        for moment in (row.claimed_at, row.completed_at):
            if moment is not None and business_hours_between(moment, now, calendar) <= ACTIVITY_BUSINESS_HOURS:
                active.add(row.assignee_id)
    if not active:
        return []
    allowed = users_with(capability="work", queue=queue, at=now).filter(pk__in=active, max_concurrent_tasks__gt=0)
    return sorted(allowed.values_list("pk", flat=True))


def _hours_to_due(due_date: datetime | None, *, calendar, now: datetime) -> float | None:
    return business_hours_between(now, due_date, calendar) if due_date else None


def _expected_at(forecast: TaskForecast, *, calendar, now: datetime) -> datetime | None:
    if forecast.expected_hours >= MAX_FORECAST_HOURS:
        return None
    return add_business_hours(now, forecast.expected_hours, calendar)


def _open_chunks(queue_name: str):
    """The queue's OPEN tasks in claim-next's order, CHUNK_SIZE per list, each read by its own short statement."""
    last = None
    while True:
        if last is None:
            chunk = _fetch(OPEN_LOWER_PRIORITY_SQL, {"queue": queue_name, "priority": 2**31 - 1, "limit": CHUNK_SIZE})
        else:
            params = {"queue": queue_name, "priority": last[1], "created_at": last[4], "task_id": last[0]}
            chunk = _fetch(OPEN_SAME_PRIORITY_SQL, {**params, "limit": CHUNK_SIZE})
            if len(chunk) < CHUNK_SIZE:
                chunk += _fetch(OPEN_LOWER_PRIORITY_SQL, {**params, "limit": CHUNK_SIZE - len(chunk)})
        if not chunk:
            return
        yield chunk
        last = chunk[-1]


def _write_changed(*, queue_name: str, forecasts: list[tuple[int, float, datetime | None]], now: datetime) -> int:
    """Upsert the forecasts that moved (CHANGED_SQL) in one short statement; how many were written."""
    if not forecasts:
        return 0
    ids, probabilities, expected = zip(*forecasts, strict=True)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            CHANGED_SQL,
            {
                "ids": list(ids),
                "queues": [queue_name] * len(ids),
                "probabilities": list(probabilities),
                "expected": list(expected),
                "now": now,
                "threshold": settings.SLA_RISK_THRESHOLD,
                "change_probability": CHANGE_PROBABILITY,
                "change_seconds": CHANGE_EXPECTED_SECONDS,
            },
        )
        return cursor.rowcount


@dataclass
class _Tally:
    tasks: int = 0
    at_risk: int = 0
    written: int = 0

    def add(self, forecasts: list[tuple[int, float, datetime | None]], written: int) -> None:
        self.tasks += len(forecasts)
        self.at_risk += sum(p >= settings.SLA_RISK_THRESHOLD for _, p, _ in forecasts)
        self.written += written


def _queue_context(queue: WorkflowQueue, *, now: datetime):
    calendar = business_calendar_for(queue=queue)
    rows, arrivals = _queue_reads(queue_name=queue.queue_name, since=now - RATE_WINDOW)
    rates = queue_rates(rows=rows, arrivals=arrivals, calendar=calendar, now=now)
    claimed = [row for row in rows if row.status == "CLAIMED"]
    state = queue_state(
        rates=rates,
        servers=queue_servers(queue=queue, rows=rows, calendar=calendar, now=now),
        busy_assignees={row.assignee_id for row in claimed if row.assignee_id is not None},
        hours_left_today=hours_left_today(calendar=calendar, now=now),
    )
    return calendar, rates, state, claimed


def _claimed_forecast(row: _Row, *, calendar, rates, state, now: datetime) -> TaskForecast:
    return in_service_forecast(
        state=state,
        rates=rates,
        task_type=row.task_type,
        hours_in_service=business_hours_between(row.claimed_at, now, calendar) if row.claimed_at else 0.0,
        hours_to_due=_hours_to_due(row.due_date, calendar=calendar, now=now),
    )


def _queue_refresh(queue: WorkflowQueue, *, now: datetime, tally: _Tally) -> None:
    """Forecast one queue's active tasks chunk by chunk, write those that moved, drop those no longer in it."""
    calendar, rates, state, claimed = _queue_context(queue, now=now)
    name = queue.queue_name
    forecasts = [
        (row.task_id, forecast.breach_probability, _expected_at(forecast, calendar=calendar, now=now))
        for row in claimed
        for forecast in [_claimed_forecast(row, calendar=calendar, rates=rates, state=state, now=now)]
    ]
    tally.add(forecasts, _write_changed(queue_name=name, forecasts=forecasts, now=now))
    ahead = 0
    for chunk in _open_chunks(name):
        forecasts = []
        for task_id, priority, task_type, due_date, _created_at in chunk:
            forecast = waiting_forecast(
                state=state,
                rates=rates,
                ahead=ahead,
                priority=priority,
                task_type=task_type,
                hours_to_due=_hours_to_due(due_date, calendar=calendar, now=now),
            )
            forecasts.append((task_id, forecast.breach_probability, _expected_at(forecast, calendar=calendar, now=now)))
            ahead += 1
        tally.add(forecasts, _write_changed(queue_name=name, forecasts=forecasts, now=now))
    tally.written += _delete_stale(name)


def _delete_stale(queue_name: str) -> int:
    deleted, after = 0, 0
    while ids := [
        row[0] for row in _fetch(STALE_CHUNK_SQL, {"queue": queue_name, "after": after, "limit": CHUNK_SIZE})
    ]:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(STALE_SQL, {"queue": queue_name, "after": after, "last": ids[-1]})
            deleted += cursor.rowcount
        after = ids[-1]
    return deleted


def _try_queue_lock(queue_name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('flowable.task_risks'), hashtext(%s))", [queue_name])
        return cursor.fetchone()[0]


def _queue_unlock(queue_name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(hashtext('flowable.task_risks'), hashtext(%s))", [queue_name])


def task_risks_refresh(*, queue_name: str | None = None, now: datetime | None = None) -> RiskRefresh:
    """Forecast every active task (of one queue, or of all) and store the forecasts that moved.

    Queue by queue, in short statements and transactions (the module's docstring says why). Two refreshes (the
    beat job, the command) do not work one queue at once: each takes the queue's advisory lock without waiting and
    passes a queue another holds. The on-demand path takes no lock (task_forecast_refresh)."""
    now = now or timezone.now()
    queues = WorkflowQueue.objects.all()
    if queue_name:
        queues = queues.filter(queue_name=queue_name)
    tally = _Tally()
    names = []
    for queue in queues:
        names.append(queue.queue_name)
        if not _try_queue_lock(queue.queue_name):
            continue
        try:
            _queue_refresh(queue, now=now, tally=tally)
        finally:
            _queue_unlock(queue.queue_name)
    if queue_name is None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM flowable.task_risks WHERE NOT (queue_name = ANY(%s))", [names])
            tally.written += cursor.rowcount
    return RiskRefresh(queues=len(names), tasks=tally.tasks, at_risk=tally.at_risk, written=tally.written)


def task_risk_refresh(*, task: WorkflowTask, now: datetime | None = None) -> None:
    """Forecast one active task now and store it: its queue's rates, and its place in claim-next's order counted in
    SQL. Takes no lock, so a running job never makes it wait."""
    now = now or timezone.now()
    calendar, rates, state, _claimed = _queue_context(task.queue, now=now)
    if task.status == "CLAIMED":
        row = _Row(
            task.task_id, task.queue_id, task.priority, task.task_definition_key, task.assignee_id, task.status,
            task.due_date, task.created_at, task.claimed_at, task.completed_at,
        )  # fmt: skip
        forecast = _claimed_forecast(row, calendar=calendar, rates=rates, state=state, now=now)
    else:
        params = {
            "queue": task.queue_id,
            "priority": task.effective_priority,
            "created_at": task.created_at,
            "task_id": task.task_id,
        }
        forecast = waiting_forecast(
            state=state,
            rates=rates,
            ahead=_fetch(AHEAD_SQL, params)[0][0],
            priority=task.effective_priority,
            task_type=task.task_definition_key,
            hours_to_due=_hours_to_due(task.due_date, calendar=calendar, now=now),
        )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            UPSERT_ONE_SQL,
            {
                "task_id": task.task_id,
                "queue": task.queue_id,
                "probability": forecast.breach_probability,
                "expected": _expected_at(forecast, calendar=calendar, now=now),
                "now": now,
            },
        )


def task_forecast_refresh(*, user, task_id: int, now: datetime | None = None) -> WorkflowTask:
    """On demand: forecast one task now, for a user who may see it (else NotFound, as for any task outside their
    queues). Its place in the queue is counted, the queue's other forecasts are left to the job. Returns the task,
    forecast attached (`task.risk`); a task no longer active has none and is refused (Conflict)."""
    task = task_for_user(user=user, task_id=task_id)
    if task.status not in ACTIVE_TASK_STATUSES:
        raise Conflict(f"task {task_id} is {task.status}: only open and claimed tasks are forecast")
    with system_scope():  # the system's work now that the caller's access is checked
        task_risk_refresh(task=task, now=now)
    return task_for_user(user=user, task_id=task_id)
