-- refuse_routing_hop_rewrite: the routing hops of a case's workflow (case_workflow_mapping.routing_history) are
-- append-only: an update may add hops after the ones there, never change or drop one, and a mapping is never
-- deleted or emptied, except by the maintenance role (retention, erasure) or a superuser, as for the history tables
-- (entitlements.refuse_history_rewrite).
CREATE OR REPLACE FUNCTION onecms.refuse_routing_hop_rewrite()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog'
AS $function$
DECLARE
    kept integer;
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       OR (EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'workflow_maintenance')
           AND pg_has_role(current_user, 'workflow_maintenance', 'USAGE')) THEN
        RETURN CASE TG_OP WHEN 'DELETE' THEN OLD WHEN 'UPDATE' THEN NEW END;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        kept := jsonb_array_length(OLD.routing_history);
        IF jsonb_array_length(NEW.routing_history) >= kept
           AND (kept = 0 OR jsonb_path_query_array(NEW.routing_history, ('$[0 to ' || (kept - 1) || ']')::jsonpath)
                            = OLD.routing_history) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'routing hops of %.% are append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege', HINT = 'Append a hop; never change or drop one.';
END
$function$;
