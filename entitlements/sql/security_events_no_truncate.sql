-- security_events_no_truncate: entitlements.security_events is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER security_events_no_truncate
    BEFORE TRUNCATE ON entitlements.security_events
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE entitlements.security_events ENABLE ALWAYS TRIGGER security_events_no_truncate;
