-- flowable.workflow_tasks_archive: an active superuser reads every row of the archived tasks (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE flowable.workflow_tasks_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_archive_all_read_by_superuser ON flowable.workflow_tasks_archive;
CREATE POLICY workflow_tasks_archive_all_read_by_superuser ON flowable.workflow_tasks_archive
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
