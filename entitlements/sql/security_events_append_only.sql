-- security_events_append_only: no row of the security audit is updated or deleted.
CREATE OR REPLACE TRIGGER security_events_append_only
    BEFORE UPDATE OR DELETE ON entitlements.security_events
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_audit_change();
