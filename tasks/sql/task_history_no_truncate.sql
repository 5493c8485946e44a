-- task_history_no_truncate: flowable.task_history is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER task_history_no_truncate
    BEFORE TRUNCATE ON flowable.task_history
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.task_history ENABLE ALWAYS TRIGGER task_history_no_truncate;
