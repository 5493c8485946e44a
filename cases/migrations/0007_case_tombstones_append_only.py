"""Tombstones of cases deleted by retention become append-only for every role but maintenance
(entitlements.refuse_history_rewrite, enabled ALWAYS): they are the record that a case was deleted."""

from django.db import migrations

CREATE = r"""
-- case_tombstones_append_only: what is left of a deleted case is never updated or deleted
-- (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER case_tombstones_append_only
    BEFORE UPDATE OR DELETE ON onecms.case_tombstones
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE onecms.case_tombstones ENABLE ALWAYS TRIGGER case_tombstones_append_only;

-- case_tombstones_no_truncate: onecms.case_tombstones is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER case_tombstones_no_truncate
    BEFORE TRUNCATE ON onecms.case_tombstones
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE onecms.case_tombstones ENABLE ALWAYS TRIGGER case_tombstones_no_truncate;
"""

DROP = """
DROP TRIGGER IF EXISTS case_tombstones_append_only ON onecms.case_tombstones;
DROP TRIGGER IF EXISTS case_tombstones_no_truncate ON onecms.case_tombstones;
"""


class Migration(migrations.Migration):
    dependencies = [("cases", "0006_retention")]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
