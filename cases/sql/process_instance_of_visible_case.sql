-- onecms.process_instance_of_visible_case: whether a process instance moves a case the acting user may reach
-- (assigned to them, opened by them, or reached by their queues: onecms.case_reached_by_acting_queues), for the
-- row-level security policies with which the cases app lets a case's reader read its instances and tasks.
-- SECURITY DEFINER for the same reason as case_reached_by_acting_queues.
CREATE OR REPLACE FUNCTION onecms.process_instance_of_visible_case(p_process_instance_id bigint)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms AS $$
    SELECT EXISTS (
        SELECT 1 FROM onecms.case_workflow_mapping m JOIN onecms.cases c ON c.case_id = m.case_id
         WHERE m.process_instance_id = p_process_instance_id
           AND (c.assigned_to_id = entitlements.acting_user_id() OR c.created_by_id = entitlements.acting_user_id()
                OR onecms.case_reached_by_acting_queues(c.case_id))
    )
$$;
