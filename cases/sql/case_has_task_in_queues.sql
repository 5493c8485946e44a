-- onecms.case_has_task_in_queues: whether a workflow of the case has a task in one of the named queues, the queue
-- arm of cases/selectors.py: cases_visible_to, asked per case by the case list's walk (cases/selectors.py:
-- case_list), which reads cases newest first and stops when its page is full. A function rather than an EXISTS
-- subquery: PostgreSQL may turn such a subquery into a hash of every match (reading the whole scope for one page),
-- since it prices the subquery for a scan of the whole table, not for the LIMIT; a function call is evaluated per
-- row read. SECURITY INVOKER: it reads the mappings and tasks under the caller's row-level security, like the
-- subquery it stands for.
CREATE OR REPLACE FUNCTION onecms.case_has_task_in_queues(p_case_id bigint, p_queue_names text[])
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, onecms AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM onecms.case_workflow_mapping m
         WHERE m.case_id = p_case_id
           AND EXISTS (SELECT 1 FROM flowable.workflow_tasks t
                        WHERE t.process_instance_id = m.process_instance_id
                          AND t.queue_name = ANY (p_queue_names))
    );
END
$$;
