-- flowable.workflow_tasks: an active superuser reads every row of the tasks (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE flowable.workflow_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_all_read_by_superuser ON flowable.workflow_tasks;
CREATE POLICY workflow_tasks_all_read_by_superuser ON flowable.workflow_tasks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
