"""History is append-only for every role but maintenance: one trigger function (refuse_history_rewrite) on each
history table, enabled ALWAYS so that session_replication_role = replica does not skip it, and nothing a session can
SET (pgtrigger.ignore) turns it off. The security audit's pgtrigger triggers give way to it. The application role is
refused by its grants first (core/db_roles.py, applied after migrate).
"""

import pgtrigger.migrations
from django.db import migrations

CREATE = r"""
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

-- security_events_append_only: rows of entitlements.security_events are never updated or deleted (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER security_events_append_only
    BEFORE UPDATE OR DELETE ON entitlements.security_events
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE entitlements.security_events ENABLE ALWAYS TRIGGER security_events_append_only;

-- security_events_no_truncate: entitlements.security_events is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER security_events_no_truncate
    BEFORE TRUNCATE ON entitlements.security_events
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE entitlements.security_events ENABLE ALWAYS TRIGGER security_events_no_truncate;
"""

DROP = """
DROP TRIGGER IF EXISTS security_events_append_only ON entitlements.security_events;
DROP TRIGGER IF EXISTS security_events_no_truncate ON entitlements.security_events;
DROP FUNCTION IF EXISTS entitlements.refuse_history_rewrite();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('entitlements', '0010_queue_grants_one_access_rule'),
    ]

    operations = [
        pgtrigger.migrations.RemoveTrigger(
            model_name='securityevent',
            name='append_only',
        ),
        pgtrigger.migrations.RemoveTrigger(
            model_name='securityevent',
            name='append_only_truncate',
        ),
        migrations.RunSQL(CREATE, reverse_sql=DROP),
    ]
