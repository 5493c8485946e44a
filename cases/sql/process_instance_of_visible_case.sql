-- onecms.process_instance_of_visible_case: whether a process instance moves a case the acting user may reach
-- (onecms.case_visible_to_acting_user), for the policies with which the cases app lets a case's reader read its
-- instances and tasks. SECURITY DEFINER (owner's rights, past the policies); it answers only from the caller's
-- settings.
-- Planned once per session (plan_cache_mode), not once per row: onecms.case_has_task_in_queues says why.
CREATE OR REPLACE FUNCTION onecms.process_instance_of_visible_case(p_process_instance_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM onecms.case_workflow_mapping m
         WHERE m.process_instance_id = p_process_instance_id AND onecms.case_visible_to_acting_user(m.case_id)
    );
END
$$;
