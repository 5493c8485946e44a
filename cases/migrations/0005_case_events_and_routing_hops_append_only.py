"""Case events, and the routing hops of a case's workflow, become append-only for every role but maintenance
(entitlements.refuse_history_rewrite and onecms.refuse_routing_hop_rewrite, enabled ALWAYS); corrections are new
events."""

from django.db import migrations

CREATE = r"""
-- case_events_append_only: rows of onecms.case_events are never updated or deleted (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER case_events_append_only
    BEFORE UPDATE OR DELETE ON onecms.case_events
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE onecms.case_events ENABLE ALWAYS TRIGGER case_events_append_only;

-- case_events_no_truncate: onecms.case_events is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER case_events_no_truncate
    BEFORE TRUNCATE ON onecms.case_events
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE onecms.case_events ENABLE ALWAYS TRIGGER case_events_no_truncate;

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

-- case_workflow_mapping_hops_append_only: a mapping's routing hops only grow, and a mapping is never deleted
-- (onecms.refuse_routing_hop_rewrite).
CREATE OR REPLACE TRIGGER case_workflow_mapping_hops_append_only
    BEFORE UPDATE OR DELETE ON onecms.case_workflow_mapping
    FOR EACH ROW EXECUTE FUNCTION onecms.refuse_routing_hop_rewrite();
ALTER TABLE onecms.case_workflow_mapping ENABLE ALWAYS TRIGGER case_workflow_mapping_hops_append_only;

-- case_workflow_mapping_no_truncate: the mappings and their routing hops are never emptied (TRUNCATE fires no row
-- trigger).
CREATE OR REPLACE TRIGGER case_workflow_mapping_no_truncate
    BEFORE TRUNCATE ON onecms.case_workflow_mapping
    FOR EACH STATEMENT EXECUTE FUNCTION onecms.refuse_routing_hop_rewrite();
ALTER TABLE onecms.case_workflow_mapping ENABLE ALWAYS TRIGGER case_workflow_mapping_no_truncate;
"""

DROP = """
DROP TRIGGER IF EXISTS case_events_append_only ON onecms.case_events;
DROP TRIGGER IF EXISTS case_events_no_truncate ON onecms.case_events;
DROP TRIGGER IF EXISTS case_workflow_mapping_hops_append_only ON onecms.case_workflow_mapping;
DROP TRIGGER IF EXISTS case_workflow_mapping_no_truncate ON onecms.case_workflow_mapping;
DROP FUNCTION IF EXISTS onecms.refuse_routing_hop_rewrite();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0011_history_append_only_for_every_role"),
        ("cases", "0004_case_subjects_and_encrypted_fields"),
    ]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
