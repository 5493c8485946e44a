-- flowable.task_history: an event is read with its task: the acting user reads the events of the tasks in their
-- queues and of the other tasks of those tasks' instances (flowable.task_reached_by_acting_queues).
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_of_visible_tasks ON flowable.task_history;
CREATE POLICY task_history_of_visible_tasks ON flowable.task_history
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND flowable.task_reached_by_acting_queues(task_id));
