-- onecms.case_has_task_in_queues: whether a workflow of the case has a task in one of the named queues, the queue
-- arm of cases/selectors.py: cases_visible_to, asked per case by the case list's walk (cases/selectors.py:
-- case_list), which reads cases newest first and stops when its page is full. A function rather than an EXISTS
-- subquery: PostgreSQL may turn such a subquery into a hash of every match (reading the whole scope for one page),
-- since it prices the subquery for a scan of the whole table, not for the LIMIT; a function call is evaluated per
-- row read. SECURITY DEFINER: it reads the mappings and tasks as their owner, past their policies (whose own checks
-- of the case would double the walk's cost), so it counts only the named queues the acting user may view
-- (entitlements.acting_queue_names), or any in a scope that reads every row: it answers nothing the cases' policy
-- (onecms.case_reached_by_acting_queues) does not already grant.
--
-- plan_cache_mode = force_generic_plan: its statement is planned once per session, not once per case. PL/pgSQL
-- otherwise keeps planning a statement afresh for each call while that looks cheaper than the generic plan, as it
-- does for a queue array; each planning probes the ends of the mappings' and tasks' indexes for the merge join it
-- prices, and where the ends hold dead entries (rows a bulk import or archive removed, or a rolled-back load left)
-- that probe reads every one of them, for every case the walk tests. The generic plan is the one the walk wants
-- whatever the values: the case's mappings by case id, then their tasks by process instance.
CREATE OR REPLACE FUNCTION onecms.case_has_task_in_queues(p_case_id bigint, p_queue_names text[])
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM onecms.case_workflow_mapping m
         WHERE m.case_id = p_case_id
           AND EXISTS (SELECT 1 FROM flowable.workflow_tasks t
                        WHERE t.process_instance_id = m.process_instance_id
                          AND t.queue_name = ANY (p_queue_names)
                          AND (t.queue_name = ANY (entitlements.acting_queue_names())
                               OR entitlements.acting_scope() IN ('system', 'superuser')))
    );
END
$$;
