-- alert_delivery_attempts_append_only: rows of flowable.alert_delivery_attempts are never updated or deleted (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER alert_delivery_attempts_append_only
    BEFORE UPDATE OR DELETE ON flowable.alert_delivery_attempts
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.alert_delivery_attempts ENABLE ALWAYS TRIGGER alert_delivery_attempts_append_only;
