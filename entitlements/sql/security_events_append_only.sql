-- security_events_append_only: rows of entitlements.security_events are never updated or deleted (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER security_events_append_only
    BEFORE UPDATE OR DELETE ON entitlements.security_events
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE entitlements.security_events ENABLE ALWAYS TRIGGER security_events_append_only;
