-- flowable.external_tasks: an active superuser reads every row of the external tasks (entitlements.access.console_shows_every_row);
-- writing goes through tasks/external.py, in the system scope.
ALTER TABLE flowable.external_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS external_tasks_all_read_by_superuser ON flowable.external_tasks;
CREATE POLICY external_tasks_all_read_by_superuser ON flowable.external_tasks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
