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
