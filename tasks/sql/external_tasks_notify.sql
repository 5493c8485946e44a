-- external_tasks_notify: an external task that is new, or whose lock was released (unlock, failure, retry),
-- wakes the long-polling workers of its topic (flowable.external_task_notify).
CREATE OR REPLACE TRIGGER external_tasks_notify
    AFTER INSERT OR UPDATE OF lock_expires_at, retries, retry_at ON flowable.external_tasks
    FOR EACH ROW WHEN (NEW.status = 'ACTIVE' AND NEW.lock_expires_at IS NULL)
    EXECUTE FUNCTION flowable.external_task_notify();
