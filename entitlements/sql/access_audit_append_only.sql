-- access_audit_append_only: rows of entitlements.access_audit are never updated or deleted
-- (entitlements.refuse_history_rewrite); PostgreSQL copies the row trigger to every month partition.
CREATE OR REPLACE TRIGGER access_audit_append_only
    BEFORE UPDATE OR DELETE ON entitlements.access_audit
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE entitlements.access_audit ENABLE ALWAYS TRIGGER access_audit_append_only;
