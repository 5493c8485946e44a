-- flowable.task_reached_by_acting_queues: whether a task is in the acting user's queues, or belongs to a process
-- instance one of whose tasks is (entitlements.acting_queue_names): the tasks' own policies, asked by the policy of
-- their history. A function, not a subquery in the policy: PostgreSQL may turn a policy's EXISTS into a hash of
-- every row the subquery reaches, and would then evaluate the tasks' policies over the whole table for one event.
-- SECURITY DEFINER (owner's rights, past the tasks' policies); it answers only from the caller's settings.
-- Planned once per session (plan_cache_mode), not once per row: onecms.case_has_task_in_queues says why.
CREATE OR REPLACE FUNCTION flowable.task_reached_by_acting_queues(p_task_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, flowable
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM flowable.workflow_tasks t
         WHERE t.task_id = p_task_id
           AND (t.queue_name = ANY (entitlements.acting_queue_names())
                OR (t.process_instance_id IS NOT NULL
                    AND flowable.process_instance_in_acting_queues(t.process_instance_id)))
    );
END
$$;
