-- flowable.process_instance_in_acting_queues: whether a process instance has a task in the acting user's queues
-- (entitlements.acting_queue_names), for the row-level security policies of process instances and of the tasks
-- that follow their instance. SECURITY DEFINER: it reads workflow_tasks as the tables' owner, past their policies,
-- since a policy of workflow_tasks may not query workflow_tasks under its own policies (PostgreSQL refuses the
-- recursion). It answers only from the caller's settings, and only this one question. PL/pgSQL, as every function
-- a policy calls per row: it keeps its plan for the session, where a SQL function would plan its query at each
-- statement (a third more time per claim, measured).
-- Planned once per session (plan_cache_mode), not once per row: onecms.case_has_task_in_queues says why.
CREATE OR REPLACE FUNCTION flowable.process_instance_in_acting_queues(p_process_instance_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, flowable
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM flowable.workflow_tasks t
         WHERE t.process_instance_id = p_process_instance_id
           AND t.queue_name = ANY (entitlements.acting_queue_names())
    );
END
$$;
