"""The access audit is append-only like the other history tables (entitlements.refuse_history_rewrite, enabled
ALWAYS); core/db_roles.py keeps UPDATE, DELETE and TRUNCATE of it and its partitions from the application role."""

from django.db import migrations

CREATE = """
-- access_audit_append_only: rows of entitlements.access_audit are never updated or deleted
-- (entitlements.refuse_history_rewrite); PostgreSQL copies the row trigger to every month partition.
CREATE OR REPLACE TRIGGER access_audit_append_only
    BEFORE UPDATE OR DELETE ON entitlements.access_audit
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE entitlements.access_audit ENABLE ALWAYS TRIGGER access_audit_append_only;

-- access_audit_no_truncate: entitlements.access_audit is never emptied. A TRUNCATE trigger is not copied to the
-- partitions: no runtime role holds TRUNCATE on them (core/db_roles.py), and this one guards the parent.
CREATE OR REPLACE TRIGGER access_audit_no_truncate
    BEFORE TRUNCATE ON entitlements.access_audit
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE entitlements.access_audit ENABLE ALWAYS TRIGGER access_audit_no_truncate;
"""

DROP = """
DROP TRIGGER IF EXISTS access_audit_append_only ON entitlements.access_audit;
DROP TRIGGER IF EXISTS access_audit_no_truncate ON entitlements.access_audit;
"""


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0012_access_audit")]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
