-- flowable.task_history: an event is read with its task: where the acting user may read the task (its policies
-- apply inside), they may read its history.
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_of_visible_tasks ON flowable.task_history;
CREATE POLICY task_history_of_visible_tasks ON flowable.task_history
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (EXISTS (SELECT 1 FROM flowable.workflow_tasks t WHERE t.task_id = task_history.task_id));
