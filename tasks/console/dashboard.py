"""Reads behind the supervisor dashboard: per supervised queue and per caseworker figures, cheap on millions of tasks.

Where each figure comes from, so that no page load scans flowable.workflow_tasks:

- open / claimed / escalated / overdue counts, oldest open age and average open age: flowable.mv_queue_performance,
  as of its last refresh (refresh_dashboards, every 15 minutes; the time is shown on the dashboard);
- at risk: active tasks whose SLA-risk forecast (flowable.task_risks, every five minutes) reaches
  SLA_RISK_THRESHOLD, counted in the same query;
- load versus capacity: the queue row itself (current_load is kept in the same transaction as each claim);
- throughput per hour, median time to completion and SLA compliance over 24 h / 7 d / 30 d: the hourly rows of
  flowable.mv_queue_throughput_hourly (at most 720 rows per queue);
- per caseworker claimed now: a range scan of idx_workflow_tasks_assignee_active over CLAIMED tasks, live;
  completed today: the whole hours in flowable.mv_caseworker_completions_hourly plus a live count of the
  completions since its last whole hour (idx_workflow_tasks_completed), so the count is exact between refreshes.

The median over a window is the completion-weighted median of the hourly medians: exact per hour, an
approximation across hours that needs no pass over raw tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core.replica import read_connection, replica_reads
from entitlements.access import queues_for
from entitlements.models import Capability

SLA_WINDOWS = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)))
THROUGHPUT_HOURS = 24
SLA_TREND_DAYS = 14

PERFORMANCE_SQL = """
SELECT p.queue_name, p.open_tasks, p.claimed_tasks, p.escalated_tasks, p.overdue_tasks, p.oldest_open_at,
       -- the age at the refresh, aged since: the figure as of now, never below 0 (a refresh inside the transaction
       -- that made the tasks saw them younger than its own start)
       greatest(p.avg_open_age_seconds + EXTRACT(EPOCH FROM (now() - p.computed_at)), 0),
       coalesce(r.at_risk, 0)
  FROM flowable.mv_queue_performance p
  LEFT JOIN (SELECT queue_name, count(*) AS at_risk FROM flowable.task_risks
              WHERE queue_name = ANY(%(queues)s) AND breach_probability >= %(threshold)s
              GROUP BY queue_name) r ON r.queue_name = p.queue_name
 WHERE p.queue_name = ANY(%(queues)s)
"""

# One pass over each queue's hourly rows of the last 30 days.
WINDOW_SQL = """
SELECT queue_name,
       sum(completed) FILTER (WHERE hour >= %(since_24h)s) AS completed_24h,
       sum(completed_within_sla) FILTER (WHERE hour >= %(since_24h)s) AS within_24h,
       sum(completed) FILTER (WHERE hour >= %(since_7d)s) AS completed_7d,
       sum(completed_within_sla) FILTER (WHERE hour >= %(since_7d)s) AS within_7d,
       sum(completed) AS completed_30d,
       sum(completed_within_sla) AS within_30d
  FROM flowable.mv_queue_throughput_hourly
 WHERE queue_name = ANY(%(queues)s) AND hour >= %(since_30d)s
 GROUP BY queue_name
"""

MEDIAN_SQL = """
SELECT queue_name, completed, median_seconds
  FROM flowable.mv_queue_throughput_hourly
 WHERE queue_name = ANY(%(queues)s) AND hour >= %(since)s AND median_seconds IS NOT NULL
"""

HOURLY_SQL = """
SELECT hour, sum(completed) AS completed
  FROM flowable.mv_queue_throughput_hourly
 WHERE queue_name = ANY(%(queues)s) AND hour >= %(since)s
 GROUP BY hour
"""

DAILY_SLA_SQL = """
SELECT date_trunc('day', hour) AS day, sum(completed) AS completed, sum(completed_within_sla) AS within_sla
  FROM flowable.mv_queue_throughput_hourly
 WHERE queue_name = ANY(%(queues)s) AND hour >= %(since)s
 GROUP BY 1
 ORDER BY 1
"""

# Claimed now: a range scan of the CLAIMED partial index. Completed today: the whole hours the hourly view holds
# (it ends at the hour its last refresh began), plus a live count of the completions after them, a range scan of
# today's COMPLETED partial index over at most the last refresh interval and an hour.
CASEWORKERS_SQL = """
WITH claimed AS (
    SELECT assignee_id, count(*) AS claimed_now
      FROM flowable.workflow_tasks
     WHERE status = 'CLAIMED' AND queue_name = ANY(%(queues)s)
     GROUP BY assignee_id
), summed AS (
    SELECT assignee_id, completed
      FROM flowable.mv_caseworker_completions_hourly
     WHERE queue_name = ANY(%(queues)s) AND hour >= %(today)s
), completed AS (
    SELECT assignee_id, sum(completed)::bigint AS completed_today
      FROM (SELECT assignee_id, completed FROM summed
            UNION ALL
            SELECT assignee_id, 1
              FROM flowable.workflow_tasks
             WHERE status = 'COMPLETED' AND assignee_id IS NOT NULL AND queue_name = ANY(%(queues)s)
               AND completed_at >= %(live_since)s) AS parts
     GROUP BY assignee_id
)
SELECT u.username, coalesce(c.claimed_now, 0), coalesce(d.completed_today, 0)
  FROM claimed c
  FULL JOIN completed d ON d.assignee_id = c.assignee_id
  JOIN entitlements.users u ON u.id = coalesce(c.assignee_id, d.assignee_id)
 WHERE NOT u.is_service_account  -- integration accounts are not caseworkers
 ORDER BY u.username
"""

# Where the hourly view's whole hours end (read first, so the planner sees the live range as a value and walks
# the completed-tasks index over just that range).
VIEW_HOURS_END_SQL = "SELECT max(hour) + interval '1 hour' FROM flowable.mv_caseworker_completions_hourly"

LAST_REFRESH_SQL = "SELECT refreshed_at FROM flowable.dashboard_refreshes ORDER BY refresh_id DESC LIMIT 1"


@dataclass
class QueueFigures:
    queue_name: str
    display_name: str
    department: str
    current_load: int
    max_capacity: int
    intake_paused: bool
    open: int = 0
    claimed: int = 0
    escalated: int = 0
    overdue: int = 0
    at_risk: int = 0  # active tasks forecast to miss their due date (tasks/forecast/), as of its last run
    oldest_open_age_seconds: float | None = None
    avg_open_age_seconds: float | None = None
    throughput_per_hour: float = 0.0
    median_completion_seconds: float | None = None
    sla_compliance: dict[str, float | None] = field(default_factory=dict)

    @property
    def utilisation_pct(self) -> float:
        return 100.0 * self.current_load / self.max_capacity if self.max_capacity else 0.0


@dataclass
class CaseworkerFigures:
    username: str
    claimed_now: int
    completed_today: int


@dataclass
class Dashboard:
    queues: list[QueueFigures]
    caseworkers: list[CaseworkerFigures]
    throughput_hourly: list[tuple[datetime, int]]  # the last THROUGHPUT_HOURS hours, oldest first, gaps as 0
    sla_trend_daily: list[tuple[datetime, float | None]]  # compliance % per day, oldest first
    last_refreshed_at: datetime | None
    generated_at: datetime


def _pct(within, total) -> float | None:
    return round(100.0 * float(within) / float(total), 1) if total else None


def weighted_median(pairs: list[tuple[int, float]]) -> float | None:
    """The median of values each standing for `weight` observations (hourly medians weighted by completions)."""
    pairs = sorted((value, weight) for weight, value in pairs if weight)
    total = sum(weight for _, weight in pairs)
    if not total:
        return None
    seen = 0
    for value, weight in pairs:
        seen += weight
        if seen * 2 >= total:
            return float(value)
    return None


@replica_reads
def supervisor_dashboard(*, user, now: datetime | None = None) -> Dashboard:
    """Figures for the queues `user` supervises now (none: an empty dashboard). Eight small queries in all, on the
    read replica when one serves (core/replica.py): figures as of a refresh tolerate a few seconds more."""
    now = now or timezone.now()
    queues = list(
        queues_for(user=user, capability=Capability.SUPERVISE).select_related("department").order_by("queue_name")
    )
    names = [q.queue_name for q in queues]
    figures = {
        q.queue_name: QueueFigures(
            queue_name=q.queue_name,
            display_name=q.display_name,
            department=q.department.dept_name if q.department else "",
            current_load=q.current_load,
            max_capacity=q.max_capacity,
            intake_paused=q.intake_paused,
        )
        for q in queues
    }
    hour_now = now.replace(minute=0, second=0, microsecond=0)
    since_hourly = hour_now - timedelta(hours=THROUGHPUT_HOURS - 1)
    day_now = now.replace(hour=0, minute=0, second=0, microsecond=0)
    since_daily = day_now - timedelta(days=SLA_TREND_DAYS - 1)
    hourly: dict[datetime, int] = {}
    daily: dict[datetime, float | None] = {}
    caseworkers: list[CaseworkerFigures] = []
    last_refreshed_at = None
    with read_connection().cursor() as cursor:
        if names:
            cursor.execute(PERFORMANCE_SQL, {"queues": names, "threshold": settings.SLA_RISK_THRESHOLD})
            for name, open_, claimed, escalated, overdue, oldest_at, avg_age, at_risk in cursor.fetchall():
                row = figures[name]
                row.open, row.claimed, row.escalated, row.overdue = open_, claimed, escalated, overdue
                row.at_risk = at_risk
                row.oldest_open_age_seconds = (now - oldest_at).total_seconds() if oldest_at else None
                row.avg_open_age_seconds = float(avg_age) if avg_age is not None else None

            windows = {label: now - span for label, span in SLA_WINDOWS}
            cursor.execute(
                WINDOW_SQL,
                {
                    "queues": names,
                    "since_24h": windows["24h"],
                    "since_7d": windows["7d"],
                    "since_30d": windows["30d"],
                },
            )
            for name, c24, w24, c7, w7, c30, w30 in cursor.fetchall():
                row = figures[name]
                row.throughput_per_hour = round(float(c24 or 0) / 24, 2)
                row.sla_compliance = {"24h": _pct(w24, c24), "7d": _pct(w7, c7), "30d": _pct(w30, c30)}

            cursor.execute(MEDIAN_SQL, {"queues": names, "since": windows["24h"]})
            per_queue: dict[str, list[tuple[int, float]]] = {}
            for name, completed, median in cursor.fetchall():
                per_queue.setdefault(name, []).append((int(completed), float(median)))
            for name, pairs in per_queue.items():
                figures[name].median_completion_seconds = weighted_median(pairs)

            cursor.execute(HOURLY_SQL, {"queues": names, "since": since_hourly})
            hourly = {hour: int(completed) for hour, completed in cursor.fetchall()}

            cursor.execute(DAILY_SLA_SQL, {"queues": names, "since": since_daily})
            daily = {day: _pct(within, completed) for day, completed, within in cursor.fetchall()}

            cursor.execute(VIEW_HOURS_END_SQL)
            view_hours_end = cursor.fetchone()[0]
            live_since = max(day_now, view_hours_end) if view_hours_end else day_now
            cursor.execute(CASEWORKERS_SQL, {"queues": names, "today": day_now, "live_since": live_since})
            caseworkers = [CaseworkerFigures(*row) for row in cursor.fetchall()]

        cursor.execute(LAST_REFRESH_SQL)
        row = cursor.fetchone()
        last_refreshed_at = row[0] if row else None

    for row in figures.values():
        row.sla_compliance = row.sla_compliance or {label: None for label, _ in SLA_WINDOWS}
    hours = [since_hourly + timedelta(hours=i) for i in range(THROUGHPUT_HOURS)]
    days = [since_daily + timedelta(days=i) for i in range(SLA_TREND_DAYS)]
    return Dashboard(
        queues=[figures[name] for name in names],
        caseworkers=caseworkers,
        throughput_hourly=[(hour, hourly.get(hour, 0)) for hour in hours],
        sla_trend_daily=[(day, daily.get(day)) for day in days],
        last_refreshed_at=last_refreshed_at,
        generated_at=now,
    )
