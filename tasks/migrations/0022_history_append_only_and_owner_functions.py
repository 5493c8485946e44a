"""Task history and its archive become append-only (entitlements.refuse_history_rewrite, enabled ALWAYS). Two jobs
that needed the owner's rights get SECURITY DEFINER functions instead, so the application and maintenance roles hold
no DDL: refreshing the dashboards (dashboards_refresh) and creating an archive month partition
(archive_partition_create). core/db_roles.py grants who may call them.
"""

from django.db import migrations

CREATE = r"""
-- task_history_append_only: rows of flowable.task_history are never updated or deleted (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER task_history_append_only
    BEFORE UPDATE OR DELETE ON flowable.task_history
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.task_history ENABLE ALWAYS TRIGGER task_history_append_only;

-- task_history_no_truncate: flowable.task_history is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER task_history_no_truncate
    BEFORE TRUNCATE ON flowable.task_history
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.task_history ENABLE ALWAYS TRIGGER task_history_no_truncate;

-- task_history_archive_append_only: rows of flowable.task_history_archive are never updated or deleted (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER task_history_archive_append_only
    BEFORE UPDATE OR DELETE ON flowable.task_history_archive
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.task_history_archive ENABLE ALWAYS TRIGGER task_history_archive_append_only;

-- task_history_archive_no_truncate: flowable.task_history_archive is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER task_history_archive_no_truncate
    BEFORE TRUNCATE ON flowable.task_history_archive
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.task_history_archive ENABLE ALWAYS TRIGGER task_history_archive_no_truncate;

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

-- archive_partition_create: create one month partition of an archive table. Creating a partition needs the parent's
-- owner; as SECURITY DEFINER this lets the maintenance role do exactly this (core/db_roles.py grants EXECUTE), for
-- the two archive tables only, under the name tasks/sla/archive.py gives. Returns false when it already existed.
CREATE OR REPLACE FUNCTION flowable.archive_partition_create(parent text, partition_name text, starts timestamp with time zone, ends timestamp with time zone)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog'
AS $function$
BEGIN
    IF parent NOT IN ('flowable.workflow_tasks_archive', 'flowable.task_history_archive') THEN
        RAISE EXCEPTION 'not an archive table: %', parent USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF partition_name !~ ('^' || replace(parent, '.', '\.') || '_p[0-9]{4}_[0-9]{2}$') THEN
        RAISE EXCEPTION 'not a month partition name of %: %', parent, partition_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regclass(partition_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (%L) TO (%L)', partition_name, parent, starts, ends);
    RETURN true;
END
$function$;
"""

DROP = """
DROP TRIGGER IF EXISTS task_history_append_only ON flowable.task_history;
DROP TRIGGER IF EXISTS task_history_no_truncate ON flowable.task_history;
DROP TRIGGER IF EXISTS task_history_archive_append_only ON flowable.task_history_archive;
DROP TRIGGER IF EXISTS task_history_archive_no_truncate ON flowable.task_history_archive;
DROP FUNCTION IF EXISTS flowable.dashboards_refresh();
DROP FUNCTION IF EXISTS flowable.archive_partition_create(text, text, timestamp with time zone, timestamp with time zone);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0011_history_append_only_for_every_role"),
        ("tasks", "0021_process_incidents"),
    ]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
