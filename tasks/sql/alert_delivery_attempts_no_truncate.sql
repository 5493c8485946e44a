-- alert_delivery_attempts_no_truncate: flowable.alert_delivery_attempts is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER alert_delivery_attempts_no_truncate
    BEFORE TRUNCATE ON flowable.alert_delivery_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.alert_delivery_attempts ENABLE ALWAYS TRIGGER alert_delivery_attempts_no_truncate;
