-- security_events_no_truncate: the security audit is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER security_events_no_truncate
    BEFORE TRUNCATE ON entitlements.security_events
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_audit_change();
