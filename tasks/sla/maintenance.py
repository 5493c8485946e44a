"""Maintenance of the task tables: queue statistics, dashboard refresh, integrity checks.

Each function is a service that a management command and a Celery beat job both call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from core.key_rotation import unreadable_encrypted_values
from core.timeouts import statement_timeout_lift
from queues.models import QueueStatistics, WorkflowQueue

DASHBOARD_VIEWS = (
    "flowable.mv_queue_performance",
    "flowable.mv_queue_throughput_hourly",
    "flowable.mv_caseworker_completions_hourly",
    "flowable.mv_mining_activity_daily",
    "flowable.mv_mining_transition_daily",
    "flowable.mv_mining_variant_daily",
)

STATISTICS_SQL = """
SELECT q.queue_id,
       count(t.task_id) FILTER (WHERE t.status = 'OPEN') AS open_count,
       count(t.task_id) FILTER (WHERE t.status = 'CLAIMED') AS claimed_count,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.escalation_level > 0) AS escalated_count,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.due_date < %(now)s) AS overdue_count,
       avg(EXTRACT(EPOCH FROM (%(now)s - t.created_at))) FILTER (WHERE t.status = 'OPEN') AS avg_open_age,
       max(EXTRACT(EPOCH FROM (%(now)s - t.created_at))) FILTER (WHERE t.status = 'OPEN') AS oldest_open_age
  FROM queues.workflow_queues q
  LEFT JOIN flowable.workflow_tasks t
         ON t.queue_name = q.queue_name AND t.status IN ('OPEN', 'CLAIMED')
 GROUP BY q.queue_id
"""

COMPLETED_SQL = """
SELECT queue_name,
       count(*) AS completed,
       count(*) FILTER (WHERE due_date IS NULL OR completed_at <= due_date) AS within_sla
  FROM flowable.workflow_tasks
 WHERE status = 'COMPLETED' AND completed_at >= %(since)s
 GROUP BY queue_name
"""


@transaction.atomic
def update_queue_statistics(*, dry_run: bool = False) -> list[QueueStatistics]:
    """Snapshot each queue's figures (counts, ages, 24 h completions and SLA compliance) into queue_statistics."""
    now = timezone.now()
    statement_timeout_lift(reason="queue statistics aggregate every open and claimed task")
    with connection.cursor() as cursor:
        cursor.execute(STATISTICS_SQL, {"now": now})
        live = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute(COMPLETED_SQL, {"since": now - timedelta(hours=24)})
        completed = {row[0]: row[1:] for row in cursor.fetchall()}
    snapshots = []
    for queue in WorkflowQueue.objects.order_by("queue_name"):
        open_count, claimed, escalated, overdue, avg_age, oldest = live.get(queue.pk, (0, 0, 0, 0, None, None))
        done, within = completed.get(queue.queue_name, (0, 0))
        snapshots.append(
            QueueStatistics(
                queue=queue,
                computed_at=now,
                open_count=open_count,
                claimed_count=claimed,
                escalated_count=escalated,
                overdue_count=overdue,
                completed_last_24h=done,
                avg_open_age_seconds=float(avg_age) if avg_age is not None else None,
                oldest_open_age_seconds=float(oldest) if oldest is not None else None,
                sla_compliance_pct=(100.0 * within / done) if done else None,
            )
        )
    if not dry_run:
        QueueStatistics.objects.bulk_create(snapshots)
    return snapshots


def refresh_dashboards() -> list[str]:
    """Refresh the dashboard materialized views without blocking readers (CONCURRENTLY)."""
    refreshed = []
    with transaction.atomic(), connection.cursor() as cursor:
        statement_timeout_lift(reason="the dashboard views are recomputed from all tasks and history")
        # REFRESH needs the views' owner; this function (tasks/sql/dashboards_refresh.sql) runs as it.
        cursor.execute("SELECT flowable.dashboards_refresh()")
        # The process mining views (tasks/console/mining.py), through their own function: tasks/sql/mining_refresh.sql.
        cursor.execute("SELECT flowable.mining_refresh()")
    refreshed.extend(DASHBOARD_VIEWS)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO flowable.dashboard_refreshes (refreshed_at) VALUES (%s)", [timezone.now()])
    return refreshed


@dataclass
class IntegrityReport:
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


INTEGRITY_CHECKS = [
    (
        "queue load differs from its CLAIMED tasks",
        """
        SELECT q.queue_name || ': current_load ' || q.current_load || ', CLAIMED tasks ' || count(t.task_id)
          FROM queues.workflow_queues q
          LEFT JOIN flowable.workflow_tasks t ON t.queue_name = q.queue_name AND t.status = 'CLAIMED'
         GROUP BY q.queue_name, q.current_load
        HAVING q.current_load <> count(t.task_id)
        """,
    ),
    (
        "CLAIMED task without assignee",
        "SELECT 'task ' || task_id FROM flowable.workflow_tasks WHERE status = 'CLAIMED' AND assignee_id IS NULL",
    ),
    (
        "open task of a process that is not running",
        """
        SELECT 'task ' || t.task_id || ' is ' || t.status || ' but process ' || p.process_instance_id || ' is ' || p.status
          FROM flowable.workflow_tasks t JOIN flowable.process_instances p USING (process_instance_id)
         WHERE t.status IN ('OPEN', 'CLAIMED') AND p.status NOT IN ('RUNNING', 'SUSPENDED')
        """,
    ),
    (
        "task without a CREATED history event",
        """
        SELECT 'task ' || t.task_id FROM flowable.workflow_tasks t
         WHERE NOT EXISTS (SELECT 1 FROM flowable.task_history h WHERE h.task_id = t.task_id AND h.event_type = 'CREATED')
        """,
    ),
    (
        "task whose history does not end in its current status",
        """
        SELECT 'task ' || t.task_id || ' is ' || t.status || ' but its last status event says ' || last.status
          FROM flowable.workflow_tasks t
          JOIN LATERAL (
                SELECT h.new_values->>'status' AS status FROM flowable.task_history h
                 WHERE h.task_id = t.task_id AND h.new_values ? 'status'
                 ORDER BY h.created_at DESC, h.event_id DESC LIMIT 1
          ) last ON true
         WHERE last.status IS DISTINCT FROM t.status
        """,
    ),
    # The archive tables carry no foreign keys (tasks/sla/archive.py): what they guard is checked here. Archival
    # moves a task with all its history, and whatever deletes an instance (retention) deletes its archived tasks.
    (
        "archived history event of a task that is not in the archive",
        """
        SELECT 'event ' || h.event_id || ' of task ' || h.task_id FROM flowable.task_history_archive h
         WHERE NOT EXISTS (SELECT 1 FROM flowable.workflow_tasks_archive t WHERE t.task_id = h.task_id)
        """,
    ),
    (
        "archived task of a process instance that does not exist",
        """
        SELECT 'task ' || t.task_id || ' of process ' || t.process_instance_id FROM flowable.workflow_tasks_archive t
         WHERE t.process_instance_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM flowable.process_instances p WHERE p.process_instance_id = t.process_instance_id)
        """,
    ),
]

MAX_REPORTED_PER_CHECK = 50


def check_integrity(*, checks=None) -> IntegrityReport:
    """Verify the invariants the services keep (`checks`: (name, SQL) pairs, default INTEGRITY_CHECKS); list
    each violation (at most 50 per kind)."""
    report = IntegrityReport()
    with transaction.atomic(), connection.cursor() as cursor:
        statement_timeout_lift(reason="each invariant is checked over whole tables")
        for name, sql in INTEGRITY_CHECKS if checks is None else checks:
            cursor.execute(f"SELECT * FROM ({sql}) v LIMIT {MAX_REPORTED_PER_CHECK}")
            report.violations.extend(f"{name}: {row[0]}" for row in cursor.fetchall())
    # Encryption: values (and keyed hashes) under a key id the key set no longer holds.
    report.violations.extend(
        f"encrypted value unreadable: {line}" for line in unreadable_encrypted_values(limit=MAX_REPORTED_PER_CHECK)
    )
    return report
