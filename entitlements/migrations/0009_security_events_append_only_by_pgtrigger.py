"""The security audit's append-only triggers, declared on the model with django-pgtrigger (entitlements/triggers.py).

Same refusals as the hand-written triggers of migration 0002, which are dropped here with their function: UPDATE
and DELETE of a row, and TRUNCATE, fail with SQLSTATE 42501 and a message saying the rows are append-only.
"""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations

DROP_HAND_WRITTEN = """
DROP TRIGGER IF EXISTS security_events_no_truncate ON entitlements.security_events;
DROP TRIGGER IF EXISTS security_events_append_only ON entitlements.security_events;
DROP FUNCTION IF EXISTS entitlements.refuse_audit_change();
"""

# Migration 0002's triggers, frozen here: reversing restores them.
HAND_WRITTEN = """
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


class Migration(migrations.Migration):

    dependencies = [
        ('entitlements', '0008_hashed_api_tokens_and_login_throttling'),
    ]

    operations = [
        migrations.RunSQL(DROP_HAND_WRITTEN, reverse_sql=HAND_WRITTEN),
        pgtrigger.migrations.AddTrigger(
            model_name='securityevent',
            trigger=pgtrigger.compiler.Trigger(name='append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'rows of %.% are append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';", hash='098997ea45cb5c1a7e4640cd1518ad1ed2c42ed3', operation='UPDATE OR DELETE', pgid='pgtrigger_append_only_29642', table='entitlements"."security_events', when='BEFORE')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='securityevent',
            trigger=pgtrigger.compiler.Trigger(name='append_only_truncate', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'rows of %.% are append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';", hash='c7f00dab5c2adf7b1090159e7dead1b008e8f1cd', level='STATEMENT', operation='TRUNCATE', pgid='pgtrigger_append_only_truncate_b1d5b', table='entitlements"."security_events', when='BEFORE')),
        ),
    ]
