-- flowable.task_history: an active superuser reads every row of the task history (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_all_read_by_superuser ON flowable.task_history;
CREATE POLICY task_history_all_read_by_superuser ON flowable.task_history
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
