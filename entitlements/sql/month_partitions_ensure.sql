-- entitlements.month_partitions_ensure: the month partitions (UTC months) of a table partitioned by range of one
-- timestamptz column, from this month to p_months_ahead months ahead, created where missing and named
-- <table>_pYYYY_MM beside it; returns the names of those it created, so a second call creates nothing. A table that
-- is not partitioned (yet: flowable.task_history before `manage.py partition_task_history`) gets nothing.
--
-- Each table it creates is granted what the DEFAULT partition the migrations made is
-- (entitlements.partition_grants_copy).
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
        PERFORM entitlements.partition_grants_copy(
            coalesce(to_regclass(format('%I.%I', v_schema, v_table || '_default')),
                     to_regclass(format('%I.%I', v_schema, v_table || '_default_detached'))),
            format('%I.%I', v_schema, v_name)::regclass
        );
        RETURN NEXT v_schema || '.' || v_name;
    END LOOP;

    IF v_strays THEN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I DEFAULT', v_schema, v_table || '_default', v_schema, v_table);
        PERFORM entitlements.partition_grants_copy(
            format('%I.%I', v_schema, v_table || '_default_detached')::regclass,
            format('%I.%I', v_schema, v_table || '_default')::regclass
        );
        EXECUTE format(
            'INSERT INTO %I.%I OVERRIDING SYSTEM VALUE SELECT * FROM %I.%I',
            v_schema, v_table, v_schema, v_table || '_default_detached'
        );
        EXECUTE format('DROP TABLE %I.%I', v_schema, v_table || '_default_detached');
    END IF;
END
$function$;
