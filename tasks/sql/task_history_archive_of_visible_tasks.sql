-- flowable.task_history_archive: an archived event is read with its archived task.
ALTER TABLE flowable.task_history_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_archive_of_visible_tasks ON flowable.task_history_archive;
CREATE POLICY task_history_archive_of_visible_tasks ON flowable.task_history_archive
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (EXISTS (SELECT 1 FROM flowable.workflow_tasks_archive t WHERE t.task_id = task_history_archive.task_id));
