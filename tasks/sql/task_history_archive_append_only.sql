-- task_history_archive_append_only: rows of flowable.task_history_archive are never updated or deleted (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER task_history_archive_append_only
    BEFORE UPDATE OR DELETE ON flowable.task_history_archive
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.task_history_archive ENABLE ALWAYS TRIGGER task_history_archive_append_only;
