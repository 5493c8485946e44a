"""Task lists page by cursor; GET /api/queues/ reads its figures from flowable.mv_queue_performance.

- idx_workflow_tasks_queue_status_priority ends with task_id and includes process_instance_id: the task list's
  probes (one per queue and status, core/pagination.py) read its (priority, created_at, task_id) key from the index
  alone, the columns row-level security's policies read included, and bound a page after a cursor by it. Built CONCURRENTLY under a new name, the old one dropped, the new one renamed (so the migration is
  not atomic): a plain CREATE INDEX would block every write of tasks for the whole build.
- flowable.mv_queue_performance gains due_soon_tasks (open or claimed, due within 24 hours), the one figure of
  GET /api/queues/ it lacked. Recreated (a materialized view's columns cannot be altered); the grants follow
  migrate (core/db_roles.py).
"""
from django.db import migrations, models

INDEX_FORWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_queue_status_key ON flowable.workflow_tasks"
    " (queue_name, status, priority DESC, created_at, task_id) INCLUDE (process_instance_id)",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_queue_status_priority",
    "ALTER INDEX flowable.idx_workflow_tasks_queue_status_key RENAME TO idx_workflow_tasks_queue_status_priority",
]
INDEX_BACKWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_queue_status_seed ON flowable.workflow_tasks"
    " (queue_name, status, priority DESC, created_at)",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_queue_status_priority",
    "ALTER INDEX flowable.idx_workflow_tasks_queue_status_seed RENAME TO idx_workflow_tasks_queue_status_priority",
]

QUEUE_PERFORMANCE = """
DROP MATERIALIZED VIEW IF EXISTS flowable.mv_queue_performance;
-- flowable.mv_queue_performance: the dashboard's heavier per-queue figures, materialized; refresh_dashboards
-- refreshes it CONCURRENTLY, which needs the unique index below. GET /api/queues/ reads it too (as of its
-- refresh), so a page view never counts a queue's tasks.
CREATE MATERIALIZED VIEW flowable.mv_queue_performance AS
SELECT q.queue_name,
       count(t.task_id) FILTER (WHERE t.status = 'OPEN') AS open_tasks,
       count(t.task_id) FILTER (WHERE t.status = 'CLAIMED') AS claimed_tasks,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.escalation_level > 0) AS escalated_tasks,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.due_date < now()) AS overdue_tasks,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.due_date >= now()
                                  AND t.due_date < now() + interval '24 hours') AS due_soon_tasks,
       min(t.created_at) FILTER (WHERE t.status = 'OPEN') AS oldest_open_at,
       avg(EXTRACT(EPOCH FROM (now() - t.created_at))) FILTER (WHERE t.status = 'OPEN') AS avg_open_age_seconds,
       now() AS computed_at
  FROM queues.workflow_queues q
  LEFT JOIN flowable.workflow_tasks t ON q.queue_name = t.queue_name AND t.status IN ('OPEN', 'CLAIMED')
 GROUP BY q.queue_name;
CREATE UNIQUE INDEX mv_queue_performance_queue ON flowable.mv_queue_performance (queue_name);
"""

QUEUE_PERFORMANCE_BEFORE = """
DROP MATERIALIZED VIEW IF EXISTS flowable.mv_queue_performance;
CREATE MATERIALIZED VIEW flowable.mv_queue_performance AS
SELECT q.queue_name,
       count(t.task_id) FILTER (WHERE t.status = 'OPEN') AS open_tasks,
       count(t.task_id) FILTER (WHERE t.status = 'CLAIMED') AS claimed_tasks,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.escalation_level > 0) AS escalated_tasks,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.due_date < now()) AS overdue_tasks,
       min(t.created_at) FILTER (WHERE t.status = 'OPEN') AS oldest_open_at,
       avg(EXTRACT(EPOCH FROM (now() - t.created_at))) FILTER (WHERE t.status = 'OPEN') AS avg_open_age_seconds,
       now() AS computed_at
  FROM queues.workflow_queues q
  LEFT JOIN flowable.workflow_tasks t ON q.queue_name = t.queue_name AND t.status IN ('OPEN', 'CLAIMED')
 GROUP BY q.queue_name;
CREATE UNIQUE INDEX mv_queue_performance_queue ON flowable.mv_queue_performance (queue_name);
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tasks", "0028_claim_next_locks_one_task"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="workflowtask", name="idx_workflow_tasks_queue_status_priority"),
                migrations.AddIndex(
                    model_name="workflowtask",
                    index=models.Index(
                        models.F("queue"),
                        models.F("status"),
                        models.OrderBy(models.F("priority"), descending=True),
                        models.F("created_at"),
                        models.F("task_id"),
                        include=("process_instance",),
                        name="idx_workflow_tasks_queue_status_priority",
                    ),
                ),
            ],
            database_operations=[migrations.RunSQL(INDEX_FORWARD, reverse_sql=INDEX_BACKWARD)],
        ),
        migrations.RunSQL(QUEUE_PERFORMANCE, reverse_sql=QUEUE_PERFORMANCE_BEFORE),
    ]
