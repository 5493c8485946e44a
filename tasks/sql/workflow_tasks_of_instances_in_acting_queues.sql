-- flowable.workflow_tasks: the acting user reads every task of a process instance one of whose tasks is in their
-- queues, as the process API lists them (tasks/api.py: ProcessSerializer). Only asked of tasks outside the queues.
ALTER TABLE flowable.workflow_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_of_instances_in_acting_queues ON flowable.workflow_tasks;
CREATE POLICY workflow_tasks_of_instances_in_acting_queues ON flowable.workflow_tasks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (process_instance_id IS NOT NULL AND (SELECT entitlements.acting_user_id()) IS NOT NULL AND queue_name <> ALL ((SELECT entitlements.acting_queue_names())::text[])
           AND flowable.process_instance_in_acting_queues(process_instance_id));
