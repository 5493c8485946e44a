-- flowable.workflow_tasks: the acting user reads and writes the tasks of the queues they may view now (the one
-- access rule, entitlements.row_scope_set), as tasks/selectors.py: tasks_visible_to does. A task moved or created
-- outside them is written in the system scope (the engine, routing, supervisors' moves to configured targets).
ALTER TABLE flowable.workflow_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_in_acting_queues ON flowable.workflow_tasks;
CREATE POLICY workflow_tasks_in_acting_queues ON flowable.workflow_tasks
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING (queue_name = ANY ((SELECT entitlements.acting_queue_names())::text[]))
    WITH CHECK (queue_name = ANY ((SELECT entitlements.acting_queue_names())::text[]));
