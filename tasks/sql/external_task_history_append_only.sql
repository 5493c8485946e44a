-- external_task_history_append_only: rows of flowable.external_task_history are never updated or deleted (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER external_task_history_append_only
    BEFORE UPDATE OR DELETE ON flowable.external_task_history
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.external_task_history ENABLE ALWAYS TRIGGER external_task_history_append_only;
