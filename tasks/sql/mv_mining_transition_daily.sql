-- flowable.mv_mining_transition_daily: how often each instance went from one activity to the next, per definition
-- version and UTC day of the move. The path is read from the order of an instance's task rows (created_at, task_id):
-- '' as source_key is the instance's start (its first task), '' as target_key its end (the last task of a completed
-- instance, on the day the instance ended). tasks/console/mining.py maps each pair onto the diagram's sequence flows.
CREATE MATERIALIZED VIEW flowable.mv_mining_transition_daily AS
WITH tasks AS (
    SELECT t.process_instance_id, t.task_id, t.task_definition_key, t.created_at
      FROM flowable.workflow_tasks t
     WHERE t.process_instance_id IS NOT NULL AND t.task_definition_key <> ''
    UNION ALL
    SELECT a.process_instance_id, a.task_id, a.task_definition_key, a.created_at
      FROM flowable.workflow_tasks_archive a
     WHERE a.process_instance_id IS NOT NULL AND a.task_definition_key <> ''
), steps AS (
    SELECT p.definition_id AS workflow_id, p.status, p.ended_at, t.task_definition_key, t.created_at,
           lag(t.task_definition_key, 1, '') OVER (PARTITION BY t.process_instance_id
                                                  ORDER BY t.created_at, t.task_id) AS previous_key,
           lead(t.task_id) OVER (PARTITION BY t.process_instance_id ORDER BY t.created_at, t.task_id) AS next_task_id
      FROM tasks t
      JOIN flowable.process_instances p ON p.process_instance_id = t.process_instance_id
), moves AS (
    SELECT workflow_id, previous_key AS source_key, task_definition_key AS target_key, created_at AS moved_at
      FROM steps
    UNION ALL
    SELECT workflow_id, task_definition_key, '', ended_at
      FROM steps
     WHERE next_task_id IS NULL AND status = 'COMPLETED' AND ended_at IS NOT NULL
)
SELECT workflow_id,
       (moved_at AT TIME ZONE 'UTC')::date AS day,
       source_key::text AS source_key,
       target_key::text AS target_key,
       count(*) AS taken
  FROM moves
 -- the last 90 UTC days, the longest period the page offers (PERIOD_DAYS): the view stays bounded
 WHERE (moved_at AT TIME ZONE 'UTC')::date >= (now() AT TIME ZONE 'UTC')::date - 89
 GROUP BY workflow_id, (moved_at AT TIME ZONE 'UTC')::date, source_key, target_key;
CREATE UNIQUE INDEX mv_mining_transition_daily_key ON flowable.mv_mining_transition_daily (workflow_id, day, source_key, target_key);
