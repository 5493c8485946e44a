-- onecms.case_scope_estimate: the planner's estimate of how many cases have a task in the named queues (the queue
-- arm of cases/selectors.py: cases_visible_to), for the case list's count ("about 1.2 million") and for its choice
-- between walking the cases and reading the matches. Nothing is read but the planner's statistics. SECURITY
-- DEFINER: planned as the caller, the row-level security policies' own filters (functions the planner cannot see
-- into) would scale the estimate down by a guessed selectivity; as the owner the plan is of the rows themselves. It
-- answers a number the caller's pg_stats already give (tasks per queue), never a row.
CREATE OR REPLACE FUNCTION onecms.case_scope_estimate(p_queue_names text[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, onecms AS $$
DECLARE
    v_plan json;
BEGIN
    EXECUTE format(
        'EXPLAIN (FORMAT JSON) SELECT m.case_id FROM onecms.case_workflow_mapping m'
        ' WHERE m.process_instance_id IN (SELECT t.process_instance_id FROM flowable.workflow_tasks t'
        ' WHERE t.queue_name = ANY (%L::text[]))', p_queue_names)
      INTO v_plan;
    RETURN (v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint;
END
$$;
