-- flowable.task_history: the acting user appends events to the tasks of their queues (claim, complete, comment).
-- Nothing else: history is append-only, and events of tasks elsewhere are the system's.
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_appended_in_acting_queues ON flowable.task_history;
CREATE POLICY task_history_appended_in_acting_queues ON flowable.task_history
    AS PERMISSIVE FOR INSERT TO PUBLIC
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND flowable.task_in_acting_queues(task_id));
