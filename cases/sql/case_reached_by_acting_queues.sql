-- onecms.case_reached_by_acting_queues: whether a case's work is in the acting user's queues now (a task of one of
-- its workflows: entitlements.acting_queue_names) or passed through a queue they supervise (a routing hop of one of
-- its workflows reached it: entitlements.acting_supervised_queue_names, the expression idx_case_mapping_hop_queues
-- indexes), as cases/selectors.py decides for pages and for the supervisor console. For the row-level security
-- policy of cases. SECURITY DEFINER: it reads the mappings and tasks as their owner, past their policies, since the
-- mappings' policy asks for the case (PostgreSQL refuses the recursion). It answers only from the caller's settings,
-- and only this one question.
-- Called for each case a statement reads (the case list's walk: every case it passes over): a SQL-standard body
-- with no join to plan, as onecms.case_has_task_in_queues says; the tasks first, and the routing hops only for a
-- caller who supervises a queue. Bound to the columns it reads, as that function is.
CREATE OR REPLACE FUNCTION onecms.case_reached_by_acting_queues(p_case_id bigint)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
BEGIN ATOMIC
    SELECT EXISTS (
        SELECT 1 FROM onecms.case_workflow_mapping m
         WHERE m.case_id = p_case_id
           AND (EXISTS (SELECT 1 FROM flowable.workflow_tasks t
                         WHERE t.process_instance_id = m.process_instance_id
                           AND t.queue_name = ANY (entitlements.acting_queue_names()))
                OR (cardinality(entitlements.acting_supervised_queue_names()) > 0
                    AND jsonb_path_query_array(m.routing_history, '$[*].to_queue')
                        ?| entitlements.acting_supervised_queue_names())));
END;
