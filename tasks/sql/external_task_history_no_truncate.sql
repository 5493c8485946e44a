-- external_task_history_no_truncate: flowable.external_task_history is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER external_task_history_no_truncate
    BEFORE TRUNCATE ON flowable.external_task_history
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.external_task_history ENABLE ALWAYS TRIGGER external_task_history_no_truncate;
