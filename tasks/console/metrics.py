"""/metrics: the figures it exports, read from the database at scrape time (core/metrics.py: access, latency).

Computed from the database, not counted in process memory, so every gunicorn worker answers the same numbers:

- per-queue gauges: open, escalated and overdue from flowable.mv_queue_performance (as of its refresh, whose
  time is exported too), load, claimed and capacity from the queue rows (current_load equals CLAIMED tasks);
- counters of task events (claims, completions, escalations, ...) from flowable.task_history, which is
  append-only. Each process remembers the counts up to an event id older than SETTLED_AFTER (no transaction
  still writing below it), and each scrape adds only the events after it: a primary-key range scan, not a
  count over the whole history. The first scrape of a process counts the settled history once.
  Archiving history (archive_completed_tasks) lowers the totals; Prometheus treats that as a counter reset.

They are read on the read replica when one serves (core/replica.py), and the replica's state is exported with
them (core.replica.ReplicaCollector). The settled counts are the same on both; a scrape a lagging replica answers
after one the primary answered may count a few recent events less, which Prometheus takes for a counter reset.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.views.decorators.http import require_GET
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from core.metrics import metrics_response
from core.replica import ReplicaCollector, read_connection, replica_reads
from entitlements.row_scope import system_scope
from tasks.console.database_health import database_gauges

SETTLED_AFTER = timedelta(minutes=5)
# Events exported as their own counters (the claims, completions, escalations), besides the total by type.
NAMED_COUNTERS = {
    "CLAIMED": ("workflow_task_claims", "Tasks claimed (by a caseworker or by push routing)."),
    "COMPLETED": ("workflow_task_completions", "Tasks completed."),
    "ESCALATED": ("workflow_task_escalations", "Tasks escalated (by a supervisor or the SLA sweep)."),
}

QUEUE_SQL = """
SELECT q.queue_name, q.current_load, q.max_capacity,
       coalesce(p.open_tasks, 0), coalesce(p.escalated_tasks, 0), coalesce(p.overdue_tasks, 0),
       coalesce(r.at_risk, 0)
  FROM queues.workflow_queues q
  LEFT JOIN flowable.mv_queue_performance p ON p.queue_name = q.queue_name
  LEFT JOIN (SELECT queue_name, count(*) AS at_risk FROM flowable.task_risks
              WHERE breach_probability >= %(threshold)s GROUP BY queue_name) r ON r.queue_name = q.queue_name
 ORDER BY q.queue_name
"""

SETTLED_SQL = """
SELECT max(event_id) FROM flowable.task_history
 WHERE event_id > %(after)s AND created_at < now() - %(settled)s
"""

EVENTS_SQL = """
SELECT event_type, count(*) FROM flowable.task_history
 WHERE event_id > %(after)s AND (%(upto)s::bigint IS NULL OR event_id <= %(upto)s)
 GROUP BY event_type
"""

LAST_REFRESH_SQL = "SELECT refreshed_at FROM flowable.dashboard_refreshes ORDER BY refresh_id DESC LIMIT 1"


@dataclass
class QueueGauge:
    queue_name: str
    load: int
    capacity: int
    open: int
    escalated: int
    overdue: int
    at_risk: int


@dataclass
class _SettledCounts:
    upto_event_id: int = 0
    counts: dict[str, int] = field(default_factory=dict)


_settled = _SettledCounts()
_settled_lock = threading.Lock()


def queue_gauges() -> list[QueueGauge]:
    with read_connection().cursor() as cursor:
        cursor.execute(QUEUE_SQL, {"threshold": settings.SLA_RISK_THRESHOLD})
        return [QueueGauge(*row) for row in cursor.fetchall()]


def task_event_totals() -> dict[str, int]:
    """Task events of each type ever recorded (in the live history table)."""
    with _settled_lock, read_connection().cursor() as cursor:
        cursor.execute(SETTLED_SQL, {"after": _settled.upto_event_id, "settled": SETTLED_AFTER})
        settled_upto = cursor.fetchone()[0]
        if settled_upto is not None:
            cursor.execute(EVENTS_SQL, {"after": _settled.upto_event_id, "upto": settled_upto})
            for event_type, count in cursor.fetchall():
                _settled.counts[event_type] = _settled.counts.get(event_type, 0) + count
            _settled.upto_event_id = settled_upto
        totals = dict(_settled.counts)
        cursor.execute(EVENTS_SQL, {"after": _settled.upto_event_id, "upto": None})
        for event_type, count in cursor.fetchall():
            totals[event_type] = totals.get(event_type, 0) + count
    return totals


def dashboard_refreshed_at() -> datetime | None:
    with read_connection().cursor() as cursor:
        cursor.execute(LAST_REFRESH_SQL)
        row = cursor.fetchone()
    return row[0] if row else None


def forget_settled_counts() -> None:
    """Start counting from scratch (tests; a process that knows history was archived)."""
    with _settled_lock:
        _settled.upto_event_id = 0
        _settled.counts.clear()


@dataclass
class WorkflowFigures:
    queues: list[QueueGauge]
    event_totals: dict[str, int]
    dashboard_refreshed_at: datetime | None


@replica_reads
def workflow_figures() -> WorkflowFigures:
    """Everything a scrape exports, read in one go (on the read replica when one serves)."""
    return WorkflowFigures(queue_gauges(), task_event_totals(), dashboard_refreshed_at())


class WorkflowCollector:
    """Reads the workflow figures once per scrape."""

    def collect(self):
        figures = workflow_figures()
        gauges = {
            "open": GaugeMetricFamily(
                "workflow_queue_open_tasks", "OPEN tasks per queue (as of the dashboard refresh).", labels=["queue"]
            ),
            "claimed": GaugeMetricFamily(
                "workflow_queue_claimed_tasks", "CLAIMED tasks per queue (live).", labels=["queue"]
            ),
            "overdue": GaugeMetricFamily(
                "workflow_queue_overdue_tasks", "Active tasks past due (as of the dashboard refresh).", labels=["queue"]
            ),
            "escalated": GaugeMetricFamily(
                "workflow_queue_escalated_tasks",
                "Active escalated tasks (as of the dashboard refresh).",
                labels=["queue"],
            ),
            "load": GaugeMetricFamily(
                "workflow_queue_load_ratio", "current_load / max_capacity per queue (live).", labels=["queue"]
            ),
            "capacity": GaugeMetricFamily("workflow_queue_capacity", "max_capacity per queue.", labels=["queue"]),
            "at_risk": GaugeMetricFamily(
                "workflow_tasks_at_risk",
                "Active tasks forecast to miss their due date (breach probability >= SLA_RISK_THRESHOLD, as of the "
                "last SLA-risk forecast).",
                labels=["queue"],
            ),
        }
        for q in figures.queues:
            gauges["open"].add_metric([q.queue_name], q.open)
            gauges["claimed"].add_metric([q.queue_name], q.load)
            gauges["overdue"].add_metric([q.queue_name], q.overdue)
            gauges["escalated"].add_metric([q.queue_name], q.escalated)
            gauges["load"].add_metric([q.queue_name], q.load / q.capacity if q.capacity else 0.0)
            gauges["capacity"].add_metric([q.queue_name], q.capacity)
            gauges["at_risk"].add_metric([q.queue_name], q.at_risk)
        yield from gauges.values()

        totals = figures.event_totals
        by_type = CounterMetricFamily("workflow_task_events", "Task history events by type.", labels=["event_type"])
        for event_type, count in sorted(totals.items()):
            by_type.add_metric([event_type.lower()], count)
        yield by_type
        for event_type, (name, documentation) in NAMED_COUNTERS.items():
            yield CounterMetricFamily(name, documentation, value=totals.get(event_type, 0))

        refreshed = figures.dashboard_refreshed_at
        yield GaugeMetricFamily(
            "workflow_dashboard_refreshed_timestamp_seconds",
            "When the dashboard materialized views were last refreshed.",
            value=refreshed.timestamp() if refreshed else 0,
        )


class DatabaseHealthCollector:
    """The primary's health (tasks/console/database_health.py): locks, slow statements, deadlocks, connections,
    standbys' lag and dead tuples of our tables, read in two statements per scrape."""

    def collect(self):
        g = database_gauges()
        yield GaugeMetricFamily(
            "workflow_db_blocked_sessions",
            "Sessions of this database waiting for a lock another holds.",
            value=g.blocked_sessions,
        )
        yield GaugeMetricFamily(
            "workflow_db_longest_lock_wait_seconds",
            "How long the longest current lock wait has lasted (0: none).",
            value=g.longest_lock_wait_seconds,
        )
        yield GaugeMetricFamily(
            "workflow_db_slow_statements",
            "Statements running for DB_SLOW_QUERY_MS or longer now.",
            value=g.slow_statements,
        )
        yield CounterMetricFamily(
            "workflow_db_deadlocks", "Deadlocks detected in this database (pg_stat_database).", value=g.deadlocks
        )
        by_state = GaugeMetricFamily(
            "workflow_db_connections", "Sessions of this database by state (pg_stat_activity).", labels=["state"]
        )
        for state, count in sorted(g.connections_by_state.items()):
            by_state.add_metric([state], count)
        yield by_state
        yield GaugeMetricFamily(
            "workflow_db_server_connections", "Sessions of every database of the server.", value=g.server_connections
        )
        yield GaugeMetricFamily("workflow_db_max_connections", "The server's max_connections.", value=g.max_connections)
        yield GaugeMetricFamily(
            "workflow_db_replicas",
            "Standbys streaming from this server (pg_stat_replication).",
            value=len(g.replication_lag),
        )
        lag = GaugeMetricFamily(
            "workflow_db_replication_lag_seconds",
            "Replay lag of each standby streaming from this server (absent without standbys; 0 when caught up).",
            labels=["replica", "client_addr"],
        )
        for name, address, seconds in g.replication_lag:
            lag.add_metric([name, address], seconds)
        yield lag
        dead = GaugeMetricFamily(
            "workflow_db_dead_tuples",
            "Dead tuples per table of our schemas (pg_stat_user_tables).",
            labels=["schema", "table"],
        )
        for schema, table, count in g.dead_tuples:
            dead.add_metric([schema, table], count)
        yield dead


@login_not_required
@require_GET
def metrics(request):
    # Figures over every queue, for the operators' scraper (no user): read in the system row scope.
    with system_scope():
        return metrics_response(request, WorkflowCollector(), ReplicaCollector(), DatabaseHealthCollector())
