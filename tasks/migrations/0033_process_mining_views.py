"""Process mining on the diagram: three materialized views of the task rows and a function that refreshes them.

- flowable.mv_mining_activity_daily, mv_mining_transition_daily and mv_mining_variant_daily hold per definition
  version and UTC day what tasks/console/mining.py reads for a period: per activity the completions, re-entries and
  every task's seconds (so its medians and 90th percentiles are exact), per pair of consecutive activities how often
  it was taken, per variant of a completed instance its count and durations. Each has the unique index REFRESH
  CONCURRENTLY needs. They keep the last 90 days, the longest period the page offers.
- flowable.mining_refresh() refreshes them as their owner (SECURITY DEFINER); refresh_dashboards calls it, so the
  dashboard refresh job keeps them current. core/db_roles.py grants EXECUTE to the application role; the grants of
  the views follow migrate.
"""

from django.db import migrations

FORWARD = """
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

-- mining_refresh: refresh the process mining materialized views without blocking their readers. REFRESH needs the
-- views' owner; as SECURITY DEFINER this lets the application role do exactly this and nothing else
-- (core/db_roles.py grants EXECUTE). refresh_dashboards calls it after flowable.dashboards_refresh().
CREATE OR REPLACE FUNCTION flowable.mining_refresh()
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog'
AS $function$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY flowable.mv_mining_activity_daily;
    REFRESH MATERIALIZED VIEW CONCURRENTLY flowable.mv_mining_transition_daily;
    REFRESH MATERIALIZED VIEW CONCURRENTLY flowable.mv_mining_variant_daily;
END
$function$;
"""

BACKWARD = """
DROP FUNCTION IF EXISTS flowable.mining_refresh();
DROP MATERIALIZED VIEW IF EXISTS flowable.mv_mining_variant_daily;
DROP MATERIALIZED VIEW IF EXISTS flowable.mv_mining_transition_daily;
DROP MATERIALIZED VIEW IF EXISTS flowable.mv_mining_activity_daily;
"""


class Migration(migrations.Migration):
    dependencies = [("tasks", "0032_schedule_sla_risk_forecast")]

    operations = [migrations.RunSQL(FORWARD, reverse_sql=BACKWARD)]
