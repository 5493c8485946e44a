-- entitlements.ensure_access_audit_partitions: the month partitions of entitlements.access_audit (UTC months) from
-- this month to p_months_ahead months ahead, created where missing (entitlements.month_partitions_ensure); returns
-- the names of those it created, so a second call creates nothing. The daily beat job and
-- `manage.py ensure_access_audit_partitions` call it.
--
-- SECURITY DEFINER: it runs as its owner (the role that ran the migrations), because the application role that
-- calls it holds no DDL rights; search_path is pinned (pg_temp last, so no temporary object of the caller's can
-- stand in for ours) and EXECUTE is revoked from PUBLIC. It creates partitions of this one table, for at most 25
-- months from now: a caller cannot make it create anything else.
CREATE OR REPLACE FUNCTION entitlements.ensure_access_audit_partitions(p_months_ahead integer DEFAULT 2)
 RETURNS SETOF text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'entitlements', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
BEGIN
    RETURN QUERY SELECT entitlements.month_partitions_ensure('entitlements.access_audit', p_months_ahead);
END
$function$;
