"""The database itself refuses UPDATE and DELETE on security audit rows, whoever asks."""
from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION entitlements.refuse_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows of %.% are append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER security_events_append_only
    BEFORE UPDATE OR DELETE ON entitlements.security_events
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_audit_change();

CREATE TRIGGER security_events_no_truncate
    BEFORE TRUNCATE ON entitlements.security_events
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_audit_change();
"""

DROP = """
DROP TRIGGER IF EXISTS security_events_no_truncate ON entitlements.security_events;
DROP TRIGGER IF EXISTS security_events_append_only ON entitlements.security_events;
DROP FUNCTION IF EXISTS entitlements.refuse_audit_change();
"""


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0001_initial")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
