-- onecms.case_visible_to_acting_user: whether the acting user may reach a case: assigned to them, opened by them, or
-- reached by their queues (onecms.case_reached_by_acting_queues): the rule of the cases' policies, asked by the
-- policies of its events and mappings, of its process instances and tasks. A function rather than a subquery on
-- onecms.cases: PostgreSQL may hash such a subquery, evaluating the cases' policies over the whole table for one
-- row. SECURITY DEFINER (owner's rights, past the policies); it answers only from the caller's settings.
-- Planned once per session (plan_cache_mode), not once per row: onecms.case_has_task_in_queues says why.
CREATE OR REPLACE FUNCTION onecms.case_visible_to_acting_user(p_case_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM onecms.cases c
         WHERE c.case_id = p_case_id
           AND (c.assigned_to_id = entitlements.acting_user_id() OR c.created_by_id = entitlements.acting_user_id()
                OR onecms.case_reached_by_acting_queues(c.case_id))
    );
END
$$;
