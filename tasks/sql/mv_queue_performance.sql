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
