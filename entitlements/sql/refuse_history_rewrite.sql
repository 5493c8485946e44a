-- refuse_history_rewrite: history tables are append-only. UPDATE, DELETE and TRUNCATE are refused unless the acting
-- role is the maintenance role (archive, retention, erasure: core/db_roles.py) or a superuser; corrections are new
-- events. The triggers that call it are enabled ALWAYS, so session_replication_role = replica does not skip them,
-- and nothing a session can SET turns them off. The application role is refused by its grants first.
CREATE OR REPLACE FUNCTION entitlements.refuse_history_rewrite()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog'
AS $function$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       OR (EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'workflow_maintenance')
           AND pg_has_role(current_user, 'workflow_maintenance', 'USAGE')) THEN
        RETURN CASE TG_OP WHEN 'DELETE' THEN OLD WHEN 'UPDATE' THEN NEW END;
    END IF;
    RAISE EXCEPTION 'rows of %.% are append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege', HINT = 'Record a correction as a new event.';
END
$function$;
