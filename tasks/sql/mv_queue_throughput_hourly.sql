-- flowable.mv_queue_throughput_hourly: completions per queue and hour over 30 days, with how many met their SLA
-- and the median time to complete; refreshed CONCURRENTLY with the other dashboard views (unique index below).
CREATE MATERIALIZED VIEW flowable.mv_queue_throughput_hourly AS
SELECT queue_name,
       date_trunc('hour', completed_at) AS hour,
       count(*) AS completed,
       count(*) FILTER (WHERE due_date IS NULL OR completed_at <= due_date) AS completed_within_sla,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (completed_at - created_at))) AS median_seconds
  FROM flowable.workflow_tasks
 WHERE status = 'COMPLETED' AND completed_at >= now() - interval '30 days'
 GROUP BY queue_name, date_trunc('hour', completed_at);
CREATE UNIQUE INDEX mv_queue_throughput_hourly_key ON flowable.mv_queue_throughput_hourly (queue_name, hour);
