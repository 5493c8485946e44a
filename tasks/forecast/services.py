"""SLA-risk forecasts from live rates, stored per task (flowable.task_risks) by the beat job or on demand.

One query reads every active task and the tasks completed in the last RATE_WINDOW (through the active-task and
completed-task indexes, never the whole table); one query per queue asks who may work it now. From those rows, per
queue and on its business calendar: arrivals per business hour by priority, service (claim to complete) per
caseworker and per task type, the caseworkers working the queue now (active in the last ACTIVITY_BUSINESS_HOURS or
holding one of its tasks, with capacity) and the team that usually works it on a day, then
tasks/forecast/model.py: forecast_queue, the function bench/forecast.py backtests.

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
from django.db.models import Q
from django.utils import timezone

from core.errors import Conflict
from entitlements.access import users_with
from entitlements.row_scope import system_scope
from queues.calendar import add_business_hours, business_hours_between
from queues.models import WorkflowQueue
from queues.selectors import business_calendar_for

from ..models import ACTIVE_TASK_STATUSES, TaskRisk, WorkflowTask
from ..selectors import task_for_user
from .model import MAX_FORECAST_HOURS, ActiveTask, QueueRates, forecast_queue

RATE_WINDOW = timedelta(weeks=4)
ACTIVITY_BUSINESS_HOURS = 1.0
# With fewer completions than this in the window, a rate is too noisy: the queue gets the defaults below.
MIN_COMPLETIONS = 5
DEFAULT_SERVICE_HOURS = 1.0
DEFAULT_SERVICE_CV = 1.0

ROWS_SQL = """
SELECT task_id, queue_name, priority, task_definition_key, assignee_id, status, due_date, created_at, claimed_at,
       completed_at
  FROM flowable.workflow_tasks
 WHERE status IN ('OPEN', 'CLAIMED') {queue_filter}
UNION ALL
SELECT task_id, queue_name, priority, task_definition_key, assignee_id, status, due_date, created_at, claimed_at,
       completed_at
  FROM flowable.workflow_tasks
 WHERE status = 'COMPLETED' AND completed_at >= %(since)s {queue_filter}
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


def _rows(*, since: datetime, queue_name: str | None) -> list[_Row]:
    sql = ROWS_SQL.format(queue_filter="AND queue_name = %(queue)s" if queue_name else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"since": since, "queue": queue_name})
        return [_Row(*row) for row in cursor.fetchall()]


def _mean_cv(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    cv = statistics.pstdev(values) / mean if len(values) > 1 and mean > 0 else DEFAULT_SERVICE_CV
    return mean, cv


def queue_rates(*, rows: list[_Row], calendar, now: datetime) -> QueueRates:
    """A queue's rates from its rows (active, and completed since now - RATE_WINDOW), in business hours."""
    since = now - RATE_WINDOW
    span = max(business_hours_between(since, now, calendar), 1.0)
    arrivals: dict[int, float] = defaultdict(float)
    by_user: dict[int, list[float]] = defaultdict(list)
    by_type: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.created_at >= since:
            arrivals[row.priority] += 1 / span
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
        arrivals_by_priority=dict(arrivals),
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


def _active_tasks(rows: list[_Row], *, calendar, now: datetime) -> list[ActiveTask]:
    return [
        ActiveTask(
            task_id=row.task_id,
            priority=row.priority,
            order=(row.created_at, row.task_id),
            task_type=row.task_type,
            hours_to_due=business_hours_between(now, row.due_date, calendar) if row.due_date else None,
            assignee_id=row.assignee_id if row.status == "CLAIMED" else None,
            hours_in_service=business_hours_between(row.claimed_at, now, calendar)
            if row.status == "CLAIMED" and row.claimed_at
            else 0.0,
        )
        for row in rows
        if row.status in ("OPEN", "CLAIMED")
    ]


@transaction.atomic
def task_risks_refresh(*, queue_name: str | None = None, now: datetime | None = None) -> RiskRefresh:
    """Forecast every active task (of one queue, or of all) and replace the stored forecasts of those queues."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        # One refresh at a time (the beat job, the command, on-demand calls): each replaces the rows it covers.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('flowable.task_risks'))")
    rows_by_queue: dict[str, list[_Row]] = defaultdict(list)
    for row in _rows(since=now - RATE_WINDOW, queue_name=queue_name):
        rows_by_queue[row.queue_name].append(row)
    queues = WorkflowQueue.objects.all()
    if queue_name:
        queues = queues.filter(queue_name=queue_name)
    risks: list[TaskRisk] = []
    names = []
    for queue in queues:
        names.append(queue.queue_name)
        rows = rows_by_queue.get(queue.queue_name, [])
        tasks = [row for row in rows if row.status in ("OPEN", "CLAIMED")]
        if not tasks:
            continue
        calendar = business_calendar_for(queue=queue)
        forecasts = forecast_queue(
            rates=queue_rates(rows=rows, calendar=calendar, now=now),
            servers=queue_servers(queue=queue, rows=rows, calendar=calendar, now=now),
            tasks=_active_tasks(rows, calendar=calendar, now=now),
            hours_left_today=hours_left_today(calendar=calendar, now=now),
        )
        for task_id, forecast in forecasts.items():
            risks.append(
                TaskRisk(
                    task_id=task_id,
                    queue_name=queue.queue_name,
                    breach_probability=forecast.breach_probability,
                    expected_completion_at=None
                    if forecast.expected_hours >= MAX_FORECAST_HOURS
                    else add_business_hours(now, forecast.expected_hours, calendar),
                    computed_at=now,
                )
            )
    # A task moved from another queue since the last run takes its old forecast with it.
    stale = (
        TaskRisk.objects.all()
        if queue_name is None
        else TaskRisk.objects.filter(Q(queue_name__in=names) | Q(task_id__in=[r.task_id for r in risks]))
    )
    stale.delete()
    TaskRisk.objects.bulk_create(risks, batch_size=1000)
    threshold = settings.SLA_RISK_THRESHOLD
    return RiskRefresh(
        queues=len(names), tasks=len(risks), at_risk=sum(r.breach_probability >= threshold for r in risks)
    )


def task_forecast_refresh(*, user, task_id: int, now: datetime | None = None) -> WorkflowTask:
    """On demand: forecast one task now, for a user who may see it (else NotFound, as for any task outside their
    queues). Its queue is forecast whole: the task's place depends on the others. Returns the task, forecast
    attached (`task.risk`); a task no longer active has none and is refused (Conflict)."""
    task = task_for_user(user=user, task_id=task_id)
    if task.status not in ACTIVE_TASK_STATUSES:
        raise Conflict(f"task {task_id} is {task.status}: only open and claimed tasks are forecast")
    with system_scope():  # the system's work now that the caller's access is checked: it rewrites the queue's rows
        task_risks_refresh(queue_name=task.queue_id, now=now)
    return task_for_user(user=user, task_id=task_id)
