-- onecms.task_of_visible_case: whether a task belongs to a case the acting user may reach
-- (onecms.process_instance_of_visible_case), for the policy with which the cases app lets a case's reader read its
-- tasks' history. SECURITY DEFINER (owner's rights, past the policies); it answers only from the caller's settings.
-- Planned once per session (plan_cache_mode), not once per row: onecms.case_has_task_in_queues says why.
CREATE OR REPLACE FUNCTION onecms.task_of_visible_case(p_task_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM flowable.workflow_tasks t
         WHERE t.task_id = p_task_id AND t.process_instance_id IS NOT NULL
           AND onecms.process_instance_of_visible_case(t.process_instance_id)
    );
END
$$;
