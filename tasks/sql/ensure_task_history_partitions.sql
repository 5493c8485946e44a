-- flowable.ensure_task_history_partitions: the month partitions of flowable.task_history (UTC months, by
-- created_at) from this month to p_months_ahead months ahead, created where missing
-- (entitlements.month_partitions_ensure); returns the names of those it created. The daily beat job and
-- `manage.py partition_task_history --ensure` call it; it creates nothing while the table is still one table
-- (an upgraded installation before `manage.py partition_task_history`).
--
-- SECURITY DEFINER: it runs as its owner, because the application role that calls it holds no DDL rights;
-- search_path is pinned and EXECUTE is granted to the application role only (core/db_roles.py). It creates
-- partitions of this one table, for at most 25 months from now.
CREATE OR REPLACE FUNCTION flowable.ensure_task_history_partitions(p_months_ahead integer DEFAULT 1)
 RETURNS SETOF text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'flowable', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
BEGIN
    RETURN QUERY SELECT entitlements.month_partitions_ensure('flowable.task_history', p_months_ahead);
END
$function$;
