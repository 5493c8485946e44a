-- flowable.workflow_tasks (from the cases app): the acting user reads every task of a case they may reach, as
-- the case page, the case API and the supervisor console's timeline list them. Only asked of tasks outside the
-- user's queues.
ALTER TABLE flowable.workflow_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_of_visible_cases ON flowable.workflow_tasks;
CREATE POLICY workflow_tasks_of_visible_cases ON flowable.workflow_tasks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (process_instance_id IS NOT NULL AND (SELECT entitlements.acting_user_id()) IS NOT NULL AND queue_name <> ALL ((SELECT entitlements.acting_queue_names())::text[])
           AND onecms.process_instance_of_visible_case(process_instance_id));
