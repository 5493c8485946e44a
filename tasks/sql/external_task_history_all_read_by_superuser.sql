-- flowable.external_task_history: an active superuser reads every row of the external task history (entitlements.access.console_shows_every_row);
-- writing goes through tasks/external.py, in the system scope.
ALTER TABLE flowable.external_task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS external_task_history_all_read_by_superuser ON flowable.external_task_history;
CREATE POLICY external_task_history_all_read_by_superuser ON flowable.external_task_history
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
