-- archive_partition_create: create one month partition of an archive table. Creating a partition needs the parent's
-- owner; as SECURITY DEFINER this lets the maintenance role do exactly this (core/db_roles.py grants EXECUTE), for
-- the two archive tables only, under the name tasks/sla/archive.py gives, granted what the table's DEFAULT partition
-- is (entitlements.partition_grants_copy). Returns false when it already existed.
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
    PERFORM entitlements.partition_grants_copy((parent || '_default')::regclass, partition_name::regclass);
    RETURN true;
END
$function$;
