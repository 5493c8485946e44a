-- flowable.mv_mining_variant_daily: the variants of completed instances (the sequence of their activities, in the
-- order of their task rows) per definition version and UTC day the instance ended, with each instance's seconds
-- from start to end, for exact medians over any period (tasks/console/mining.py).
CREATE MATERIALIZED VIEW flowable.mv_mining_variant_daily AS
WITH tasks AS (
    SELECT t.process_instance_id, t.task_id, t.task_definition_key, t.created_at
      FROM flowable.workflow_tasks t
     WHERE t.process_instance_id IS NOT NULL AND t.task_definition_key <> ''
    UNION ALL
    SELECT a.process_instance_id, a.task_id, a.task_definition_key, a.created_at
      FROM flowable.workflow_tasks_archive a
     WHERE a.process_instance_id IS NOT NULL AND a.task_definition_key <> ''
), paths AS (
    SELECT process_instance_id,
           array_agg(task_definition_key::text ORDER BY created_at, task_id) AS variant
      FROM tasks
     GROUP BY process_instance_id
)
SELECT p.definition_id AS workflow_id,
       (p.ended_at AT TIME ZONE 'UTC')::date AS day,
       v.variant,
       count(*) AS instances,
       array_agg(EXTRACT(EPOCH FROM p.ended_at - p.started_at)::double precision
                 ORDER BY p.process_instance_id) AS duration_seconds
  FROM flowable.process_instances p
  JOIN paths v ON v.process_instance_id = p.process_instance_id
 WHERE p.status = 'COMPLETED' AND p.ended_at IS NOT NULL
   -- the last 90 UTC days, the longest period the page offers (PERIOD_DAYS): the view stays bounded
   AND (p.ended_at AT TIME ZONE 'UTC')::date >= (now() AT TIME ZONE 'UTC')::date - 89
 GROUP BY p.definition_id, (p.ended_at AT TIME ZONE 'UTC')::date, v.variant;
CREATE UNIQUE INDEX mv_mining_variant_daily_key ON flowable.mv_mining_variant_daily (workflow_id, day, variant);
