-- flowable.archived_task_in_acting_queues: whether an archived task was in one of the acting user's queues
-- (entitlements.acting_queue_names), for the policy of the archived history. SECURITY DEFINER (owner's rights,
-- past the archive's policies), as flowable.task_reached_by_acting_queues; it answers only from the caller's
-- settings.
-- Planned once per session (plan_cache_mode), not once per row: onecms.case_has_task_in_queues says why.
CREATE OR REPLACE FUNCTION flowable.archived_task_in_acting_queues(p_task_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, flowable
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM flowable.workflow_tasks_archive t
         WHERE t.task_id = p_task_id AND t.queue_name = ANY (entitlements.acting_queue_names())
    );
END
$$;
