-- flowable.process_instances: the acting user reads and writes (suspend, resume) an instance one of whose tasks
-- is in their queues, as tasks/api.py: ProcessViewSet finds them. Starting one is the engine's, in the system scope.
ALTER TABLE flowable.process_instances ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS process_instances_with_tasks_in_acting_queues ON flowable.process_instances;
CREATE POLICY process_instances_with_tasks_in_acting_queues ON flowable.process_instances
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND flowable.process_instance_in_acting_queues(process_instance_id))
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND flowable.process_instance_in_acting_queues(process_instance_id));
