"""The case list's per-case tests as SQL-standard bodies, with nothing pinned per call.

The list walks cases newest first and asks two functions of each: the cases' row-level security policy
(onecms.case_reached_by_acting_queues) of every case it passes over, and its own test
(onecms.case_has_task_in_queues) of those the policy lets through. For a caller who sees a small share of the cases that
means several calls of the first per case listed, and the calls, not the index probes they make, were most of the
page's statement: each was PL/pgSQL with a pinned search_path and plan_cache_mode, both saved, set and restored on
every call.

Now each is a SQL-standard body (BEGIN ATOMIC): its names are bound when it is created, so there is no search_path
for a caller to redirect and none to pin; it is planned once per calling statement; and its statement has no join
for the planner to price (the tasks are a LATERAL probe, or an EXISTS under OR), so the dead index entries that
cases 0011 kept out of each call's planning stay out. The policy's function asks for the tasks first and looks at
the routing hops only for a caller who supervises a queue. The figures before and after are in bench/RESULTS.md
(case_list.py).

Backwards: the PL/pgSQL definitions of cases 0010 and 0011 (their current text).
"""

from django.db import migrations

TASK_IN_QUEUES = """
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
"""

REACHED_BY_ACTING_QUEUES = """
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
"""

TASK_IN_QUEUES_PLPGSQL = """
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
"""

REACHED_BY_ACTING_QUEUES_PLPGSQL = """
-- onecms.case_reached_by_acting_queues: whether a case's work is in the acting user's queues now (a task of one of
-- its workflows: entitlements.acting_queue_names) or passed through a queue they supervise (a routing hop of one of
-- its workflows reached it: entitlements.acting_supervised_queue_names, the expression idx_case_mapping_hop_queues
-- indexes), as cases/selectors.py decides for pages and for the supervisor console. For the row-level security
-- policy of cases. SECURITY DEFINER: it reads the mappings and tasks as their owner, past their policies, since the
-- mappings' policy asks for the case (PostgreSQL refuses the recursion). It answers only from the caller's settings,
-- and only this one question.
-- Planned once per session (plan_cache_mode), not once per row: onecms.case_has_task_in_queues says why.
CREATE OR REPLACE FUNCTION onecms.case_reached_by_acting_queues(p_case_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM onecms.case_workflow_mapping m
         WHERE m.case_id = p_case_id
           AND (jsonb_path_query_array(m.routing_history, '$[*].to_queue')
                    ?| entitlements.acting_supervised_queue_names()
                OR EXISTS (SELECT 1 FROM flowable.workflow_tasks t
                            WHERE t.process_instance_id = m.process_instance_id
                              AND t.queue_name = ANY (entitlements.acting_queue_names())))
    );
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0011_case_walk_planned_once"),
    ]

    operations = [
        # Lists, not one string: each body is sent whole (a script would be split at the semicolons inside it).
        migrations.RunSQL(
            [TASK_IN_QUEUES, REACHED_BY_ACTING_QUEUES],
            reverse_sql=[TASK_IN_QUEUES_PLPGSQL, REACHED_BY_ACTING_QUEUES_PLPGSQL],
        ),
    ]
