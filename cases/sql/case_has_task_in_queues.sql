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
-- Called once per case walked, so its call costs what the walk costs (cases 0012). A SQL-standard body (BEGIN
-- ATOMIC): its names are bound when it is created, so no search_path is pinned per call (a pinned setting is
-- saved and restored on every call) and none the caller sets can redirect it. Its statement
-- is planned once per calling statement, as a nested loop: the tasks are a LATERAL probe by instance (LIMIT 1), so
-- there is no join for the planner to price by probing the ends of the indexes, whose dead entries (a rolled-back
-- load, rows archived) it would otherwise read (cases 0011). Its body is bound to the columns it reads: a migration
-- that changes one of their types drops it first and creates it again after (PostgreSQL refuses the change).
CREATE OR REPLACE FUNCTION onecms.case_has_task_in_queues(p_case_id bigint, p_queue_names text[])
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
BEGIN ATOMIC
    SELECT EXISTS (
        SELECT 1 FROM onecms.case_workflow_mapping m
         CROSS JOIN LATERAL (
             SELECT 1 FROM flowable.workflow_tasks t
              WHERE t.process_instance_id = m.process_instance_id
                AND t.queue_name = ANY (p_queue_names)
                AND (t.queue_name = ANY (entitlements.acting_queue_names())
                     OR entitlements.acting_scope() IN ('system', 'superuser'))
              LIMIT 1) found
         WHERE m.case_id = p_case_id);
END;
