-- flowable.task_history_archive: an archived event is read with its archived task (its queue among the acting
-- user's: flowable.archived_task_in_acting_queues).
ALTER TABLE flowable.task_history_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_archive_of_visible_tasks ON flowable.task_history_archive;
CREATE POLICY task_history_archive_of_visible_tasks ON flowable.task_history_archive
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND flowable.archived_task_in_acting_queues(task_id));
