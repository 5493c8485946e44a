-- task_history_archive_no_truncate: flowable.task_history_archive is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER task_history_archive_no_truncate
    BEFORE TRUNCATE ON flowable.task_history_archive
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.task_history_archive ENABLE ALWAYS TRIGGER task_history_archive_no_truncate;
