-- dashboards_refresh: refresh the dashboard materialized views without blocking their readers. REFRESH needs the
-- views' owner; as SECURITY DEFINER this lets the application role do exactly this and nothing else
-- (core/db_roles.py grants EXECUTE).
CREATE OR REPLACE FUNCTION flowable.dashboards_refresh()
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog'
AS $function$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY flowable.mv_queue_performance;
    REFRESH MATERIALIZED VIEW CONCURRENTLY flowable.mv_queue_throughput_hourly;
    REFRESH MATERIALIZED VIEW CONCURRENTLY flowable.mv_caseworker_completions_hourly;
END
$function$;
