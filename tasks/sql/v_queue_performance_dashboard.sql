-- flowable.v_queue_performance_dashboard: the seed's live dashboard view, per queue: load, capacity, OPEN,
-- CLAIMED and escalated tasks and the average age of active ones.
CREATE OR REPLACE VIEW flowable.v_queue_performance_dashboard AS
SELECT q.queue_name,
       q.current_load,
       q.max_capacity,
       count(t.task_id) FILTER (WHERE t.status = 'OPEN') AS open_tasks,
       count(t.task_id) FILTER (WHERE t.status = 'CLAIMED') AS claimed_tasks,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.escalation_level > 0) AS escalated_tasks,
       avg(EXTRACT(EPOCH FROM (CURRENT_TIMESTAMP - t.created_at)) / 3600) AS avg_age_hours
  FROM queues.workflow_queues q
  LEFT JOIN flowable.workflow_tasks t ON q.queue_name = t.queue_name AND t.status IN ('OPEN', 'CLAIMED')
 GROUP BY q.queue_name, q.current_load, q.max_capacity;
