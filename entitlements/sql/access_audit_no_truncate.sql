-- access_audit_no_truncate: entitlements.access_audit is never emptied. A TRUNCATE trigger is not copied to the
-- partitions: no runtime role holds TRUNCATE on them (core/db_roles.py), and this one guards the parent.
CREATE OR REPLACE TRIGGER access_audit_no_truncate
    BEFORE TRUNCATE ON entitlements.access_audit
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE entitlements.access_audit ENABLE ALWAYS TRIGGER access_audit_no_truncate;
