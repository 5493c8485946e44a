-- flowable.task_history: the acting user appends events to the tasks of their queues (claim, complete, comment).
-- Nothing else: history is append-only, and events of tasks elsewhere are the system's.
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_appended_in_acting_queues ON flowable.task_history;
CREATE POLICY task_history_appended_in_acting_queues ON flowable.task_history
    AS PERMISSIVE FOR INSERT TO PUBLIC
    WITH CHECK (EXISTS (SELECT 1 FROM flowable.workflow_tasks t
                    WHERE t.task_id = task_history.task_id AND t.queue_name = ANY ((SELECT entitlements.acting_queue_names())::text[])));
