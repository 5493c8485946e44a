-- flowable.external_task_notify: wakes the workers long-polling for an external task's topic (tasks/external.py:
-- ExternalTaskWakeups) when an item enters the pool: created, or handed back (unlocked, retried, failed with a
-- retry wait of zero). NOTIFY is delivered on commit, so a woken worker finds the item committed. The payload is
-- the topic; PostgreSQL folds identical notifications of one transaction into one.
CREATE OR REPLACE FUNCTION flowable.external_task_notify()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('external_tasks', NEW.topic_name);
    RETURN NULL;
END
$$;
