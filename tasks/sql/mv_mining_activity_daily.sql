-- flowable.mv_mining_activity_daily: process mining per definition version, activity (the userTask's element id)
-- and UTC day of completion: how many tasks of it completed, how many of those re-entered the activity in their
-- instance (rework), and every completed task's seconds at the activity (created to completed), working on it
-- (claimed, else created, to completed) and waiting before it (created to claimed). Read with a period filter by
-- tasks/console/mining.py, which takes exact percentiles over the days' arrays; refreshed CONCURRENTLY by
-- flowable.mining_refresh() (refresh_dashboards), so a page view never reads task rows or history.
CREATE MATERIALIZED VIEW flowable.mv_mining_activity_daily AS
WITH tasks AS (
    SELECT t.process_instance_id, t.task_id, t.task_definition_key, t.status, t.created_at, t.claimed_at,
           t.completed_at
      FROM flowable.workflow_tasks t
     WHERE t.process_instance_id IS NOT NULL AND t.task_definition_key <> ''
    UNION ALL
    SELECT a.process_instance_id, a.task_id, a.task_definition_key, a.status, a.created_at, a.claimed_at,
           a.completed_at
      FROM flowable.workflow_tasks_archive a
     WHERE a.process_instance_id IS NOT NULL AND a.task_definition_key <> ''
), entries AS (
    SELECT p.definition_id AS workflow_id, t.task_id, t.task_definition_key, t.status, t.created_at, t.claimed_at,
           t.completed_at,
           row_number() OVER (PARTITION BY t.process_instance_id, t.task_definition_key
                              ORDER BY t.created_at, t.task_id) AS entry
      FROM tasks t
      JOIN flowable.process_instances p ON p.process_instance_id = t.process_instance_id
)
SELECT workflow_id,
       task_definition_key,
       (completed_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS completed,
       count(*) FILTER (WHERE entry > 1) AS reentries,
       array_agg(EXTRACT(EPOCH FROM completed_at - created_at)::double precision ORDER BY task_id) AS total_seconds,
       array_agg(EXTRACT(EPOCH FROM completed_at - coalesce(claimed_at, created_at))::double precision
                 ORDER BY task_id) AS active_seconds,
       array_remove(array_agg(EXTRACT(EPOCH FROM claimed_at - created_at)::double precision ORDER BY task_id),
                    NULL) AS wait_seconds
  FROM entries
 WHERE status = 'COMPLETED' AND completed_at IS NOT NULL
   -- the last 90 UTC days, the longest period the page offers (PERIOD_DAYS): the view stays bounded
   AND (completed_at AT TIME ZONE 'UTC')::date >= (now() AT TIME ZONE 'UTC')::date - 89
 GROUP BY workflow_id, task_definition_key, (completed_at AT TIME ZONE 'UTC')::date;
CREATE UNIQUE INDEX mv_mining_activity_daily_key ON flowable.mv_mining_activity_daily (workflow_id, day, task_definition_key);
