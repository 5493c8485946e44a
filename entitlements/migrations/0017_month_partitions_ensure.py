"""Month partitions made by one function for every table partitioned by month (entitlements.month_partitions_ensure).

The access audit's function becomes a wrapper of it; flowable.task_history (tasks 0026) gets one too. The generic
function is not SECURITY DEFINER and only its owner may run it: the wrappers, which are, name their own table.
"""

from django.db import migrations

GENERIC = """
-- entitlements.month_partitions_ensure: the month partitions (UTC months) of a table partitioned by range of one
-- timestamptz column, from this month to p_months_ahead months ahead, created where missing and named
-- <table>_pYYYY_MM beside it; returns the names of those it created, so a second call creates nothing. A table that
-- is not partitioned (yet: flowable.task_history before `manage.py partition_task_history`) gets nothing.
--
-- Not SECURITY DEFINER and executable by its owner only: the per-table wrappers that are SECURITY DEFINER
-- (entitlements.ensure_access_audit_partitions, flowable.ensure_task_history_partitions) call it with their own
-- table, so no caller can name another.
--
-- Rows dated in a month that has no partition yet land in the DEFAULT partition (<table>_default), and PostgreSQL
-- refuses to create a month partition while the DEFAULT holds rows of that month. Such rows (the job did not run for
-- months) are moved without UPDATE or DELETE, so the tables' append-only rules need no exception: the DEFAULT
-- partition is detached, the month partitions and a new DEFAULT are created, the detached rows are inserted again
-- through the parent (each lands in its month, keeping its identity value) and the detached table is dropped, all
-- in the caller's transaction.
CREATE OR REPLACE FUNCTION entitlements.month_partitions_ensure(p_parent regclass, p_months_ahead integer)
 RETURNS SETOF text
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
DECLARE
    v_schema text;
    v_table text;
    v_key text;
    v_this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    v_starts timestamp[] := '{}';
    v_start timestamp;
    v_name text;
    v_strays boolean;
BEGIN
    IF p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > 24 THEN
        RAISE EXCEPTION 'months ahead must be from 0 to 24, not %', p_months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT n.nspname, c.relname, a.attname INTO v_schema, v_table, v_key
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_partitioned_table pt ON pt.partrelid = c.oid AND pt.partstrat = 'r' AND pt.partnatts = 1
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
     WHERE c.oid = p_parent AND c.relkind = 'p';
    IF v_table IS NULL THEN
        RETURN;  -- not partitioned by range of one column
    END IF;
    FOR i IN 0 .. p_months_ahead LOOP
        v_start := v_this_month + make_interval(months => i);
        IF to_regclass(format('%I.%I', v_schema, v_table || '_p' || to_char(v_start, 'YYYY_MM'))) IS NULL THEN
            v_starts := v_starts || v_start;
        END IF;
    END LOOP;
    IF cardinality(v_starts) = 0 THEN
        RETURN;  -- the usual day: nothing to create, nothing locked
    END IF;

    -- One creator at a time (the lock conflicts with itself and with writers, not with readers); then look again.
    EXECUTE format('LOCK TABLE %I.%I IN SHARE ROW EXCLUSIVE MODE', v_schema, v_table);
    SELECT coalesce(array_agg(s ORDER BY s), '{}') INTO v_starts
      FROM unnest(v_starts) AS s
     WHERE to_regclass(format('%I.%I', v_schema, v_table || '_p' || to_char(s, 'YYYY_MM'))) IS NULL;
    IF cardinality(v_starts) = 0 THEN
        RETURN;
    END IF;

    EXECUTE format(
        'SELECT EXISTS (SELECT 1 FROM %I.%I d, unnest($1) AS s'
        ' WHERE d.%I >= s AT TIME ZONE ''UTC'' AND d.%I < (s + interval ''1 month'') AT TIME ZONE ''UTC'')',
        v_schema, v_table || '_default', v_key, v_key
    ) INTO v_strays USING v_starts;
    IF v_strays THEN
        -- Deferred foreign-key checks of rows this transaction wrote would keep the detached table from being
        -- dropped: run them now (they would run at commit anyway).
        SET CONSTRAINTS ALL IMMEDIATE;
        EXECUTE format('ALTER TABLE %I.%I DETACH PARTITION %I.%I', v_schema, v_table, v_schema, v_table || '_default');
        EXECUTE format('ALTER TABLE %I.%I RENAME TO %I', v_schema, v_table || '_default', v_table || '_default_detached');
    END IF;

    FOREACH v_start IN ARRAY v_starts LOOP
        v_name := v_table || '_p' || to_char(v_start, 'YYYY_MM');
        -- Bounds written as UTC literals: they read the same whatever the session's TimeZone and DateStyle.
        EXECUTE format(
            'CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L)',
            v_schema, v_name, v_schema, v_table, to_char(v_start, 'YYYY-MM-DD') || ' 00:00+00',
            to_char(v_start + interval '1 month', 'YYYY-MM-DD') || ' 00:00+00'
        );
        RETURN NEXT v_schema || '.' || v_name;
    END LOOP;

    IF v_strays THEN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I DEFAULT', v_schema, v_table || '_default', v_schema, v_table);
        EXECUTE format(
            'INSERT INTO %I.%I OVERRIDING SYSTEM VALUE SELECT * FROM %I.%I',
            v_schema, v_table, v_schema, v_table || '_default_detached'
        );
        EXECUTE format('DROP TABLE %I.%I', v_schema, v_table || '_default_detached');
    END IF;
END
$function$;
REVOKE EXECUTE ON FUNCTION entitlements.month_partitions_ensure(regclass, integer) FROM PUBLIC;
"""

WRAPPER = """
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
"""

PREVIOUS_WRAPPER = """
-- entitlements.ensure_access_audit_partitions: the month partitions of entitlements.access_audit (UTC months) from
-- this month to p_months_ahead months ahead, created where missing; returns the names of those it created, so a
-- second call creates nothing. The daily beat job and `manage.py ensure_access_audit_partitions` call it.
--
-- SECURITY DEFINER: it runs as its owner (the role that ran the migrations), because the application role that
-- calls it holds no DDL rights; search_path is pinned (pg_temp last, so no temporary object of the caller's can
-- stand in for ours) and EXECUTE is revoked from PUBLIC. It creates partitions of this one table, for at most 25
-- months from now: a caller cannot make it create anything else.
--
-- Rows dated in a month that has no partition yet land in the DEFAULT partition, and PostgreSQL refuses to create a
-- month partition while the DEFAULT holds rows of that month. Such rows (the job did not run for months) are moved
-- without UPDATE or DELETE, so the table's append-only rules need no exception: the DEFAULT partition is detached,
-- the month partitions and a new DEFAULT are created, the detached rows are inserted again through the parent (each
-- lands in its month, keeping its access_id) and the detached table is dropped, all in the caller's transaction.
CREATE OR REPLACE FUNCTION entitlements.ensure_access_audit_partitions(p_months_ahead integer DEFAULT 2)
RETURNS SETOF text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, entitlements, pg_temp
-- Creating a partition locks the parent table: wait briefly behind the requests writing to it, then give up (the
-- job retries; partitions are made months ahead).
SET lock_timeout = '5s'
AS $$
DECLARE
    v_this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    v_starts timestamp[] := '{}';
    v_start timestamp;
    v_name text;
    v_strays boolean;
BEGIN
    IF p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > 24 THEN
        RAISE EXCEPTION 'months ahead must be from 0 to 24, not %', p_months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 0 .. p_months_ahead LOOP
        v_start := v_this_month + make_interval(months => i);
        IF to_regclass(format('entitlements.access_audit_p%s', to_char(v_start, 'YYYY_MM'))) IS NULL THEN
            v_starts := v_starts || v_start;
        END IF;
    END LOOP;
    IF cardinality(v_starts) = 0 THEN
        RETURN;  -- the usual day: nothing to create, nothing locked
    END IF;

    -- One creator at a time (the lock conflicts with itself, not with readers); then look again.
    LOCK TABLE entitlements.access_audit IN SHARE ROW EXCLUSIVE MODE;
    SELECT coalesce(array_agg(s ORDER BY s), '{}') INTO v_starts
      FROM unnest(v_starts) AS s
     WHERE to_regclass(format('entitlements.access_audit_p%s', to_char(s, 'YYYY_MM'))) IS NULL;
    IF cardinality(v_starts) = 0 THEN
        RETURN;
    END IF;

    SELECT EXISTS (
        SELECT 1 FROM entitlements.access_audit_default d, unnest(v_starts) AS s
         WHERE d.read_at >= s AT TIME ZONE 'UTC' AND d.read_at < (s + interval '1 month') AT TIME ZONE 'UTC'
    ) INTO v_strays;
    IF v_strays THEN
        ALTER TABLE entitlements.access_audit DETACH PARTITION entitlements.access_audit_default;
        ALTER TABLE entitlements.access_audit_default RENAME TO access_audit_default_detached;
    END IF;

    FOREACH v_start IN ARRAY v_starts LOOP
        v_name := format('access_audit_p%s', to_char(v_start, 'YYYY_MM'));
        -- Bounds written as UTC literals: they read the same whatever the session's TimeZone and DateStyle.
        EXECUTE format(
            'CREATE TABLE entitlements.%I PARTITION OF entitlements.access_audit FOR VALUES FROM (%L) TO (%L)',
            v_name, to_char(v_start, 'YYYY-MM-DD') || ' 00:00+00',
            to_char(v_start + interval '1 month', 'YYYY-MM-DD') || ' 00:00+00'
        );
        RETURN NEXT 'entitlements.' || v_name;
    END LOOP;

    IF v_strays THEN
        CREATE TABLE entitlements.access_audit_default PARTITION OF entitlements.access_audit DEFAULT;
        INSERT INTO entitlements.access_audit OVERRIDING SYSTEM VALUE
        SELECT * FROM entitlements.access_audit_default_detached;
        DROP TABLE entitlements.access_audit_default_detached;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION entitlements.ensure_access_audit_partitions(integer) FROM PUBLIC;
"""


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0016_work_access_for_read_only")]

    operations = [
        migrations.RunSQL(
            GENERIC, reverse_sql="DROP FUNCTION IF EXISTS entitlements.month_partitions_ensure(regclass, integer);"
        ),
        migrations.RunSQL(WRAPPER, reverse_sql=PREVIOUS_WRAPPER),
    ]
