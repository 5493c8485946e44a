-- flowable.workflow_tasks_archive: the acting user reads the archived tasks of the queues they may view now, as
-- tasks/selectors.py: task_or_archived_for_user does. Only the archive job (system scope) writes. On the partitioned
-- table: a query naming a partition itself is not filtered (the application never does).
ALTER TABLE flowable.workflow_tasks_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_archive_in_acting_queues ON flowable.workflow_tasks_archive;
CREATE POLICY workflow_tasks_archive_in_acting_queues ON flowable.workflow_tasks_archive
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (queue_name = ANY ((SELECT entitlements.acting_queue_names())::text[]));
