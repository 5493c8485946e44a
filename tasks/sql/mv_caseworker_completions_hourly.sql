-- flowable.mv_caseworker_completions_hourly: completions per caseworker, queue and hour over the last two days.
-- The dashboard's "completed today" sums the whole hours held here and counts only the completions after them
-- live; two days cover "today" in any time zone. Refreshed CONCURRENTLY with the other dashboard views.
CREATE MATERIALIZED VIEW flowable.mv_caseworker_completions_hourly AS
SELECT assignee_id,
       queue_name,
       date_trunc('hour', completed_at) AS hour,
       count(*) AS completed
  FROM flowable.workflow_tasks
 WHERE status = 'COMPLETED'
   AND assignee_id IS NOT NULL
   AND completed_at >= date_trunc('hour', now()) - interval '48 hours'
   AND completed_at < date_trunc('hour', now())
 GROUP BY assignee_id, queue_name, date_trunc('hour', completed_at);
CREATE UNIQUE INDEX mv_caseworker_completions_hourly_key
    ON flowable.mv_caseworker_completions_hourly (queue_name, hour, assignee_id);
