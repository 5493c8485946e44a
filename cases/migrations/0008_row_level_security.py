"""Row-level security on cases, their events, mappings and subjects, and the cases' share of tasks and instances.

A user reaches the cases assigned to them or opened by them, and those whose work is in the queues they may view (a
task there now) or passed through a queue they supervise (a routing hop to it); events, mappings and subjects
follow their case; and the tasks, process instances and task history of a case they reach are theirs to read, as
the case page, the case API and the console's timeline show them. Policies TO PUBLIC, keyed on the row scope (entitlements 0014); see tasks 0025 and
docs/row-level-security.md.
"""
from django.db import migrations

FUNCTIONS = """
-- onecms.case_reached_by_acting_queues: whether a case's work is in the acting user's queues now (a task of one of
-- its workflows: entitlements.acting_queue_names) or passed through a queue they supervise (a routing hop of one of
-- its workflows reached it: entitlements.acting_supervised_queue_names, the expression idx_case_mapping_hop_queues
-- indexes), as cases/selectors.py decides for pages and for the supervisor console. For the row-level security
-- policy of cases. SECURITY DEFINER: it reads the mappings and tasks as their owner, past their policies, since the
-- mappings' policy asks for the case (PostgreSQL refuses the recursion). It answers only from the caller's settings,
-- and only this one question.
CREATE OR REPLACE FUNCTION onecms.case_reached_by_acting_queues(p_case_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms AS $$
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

-- onecms.case_visible_to_acting_user: whether the acting user may reach a case: assigned to them, opened by them, or
-- reached by their queues (onecms.case_reached_by_acting_queues): the rule of the cases' policies, asked by the
-- policies of its events and mappings, of its process instances and tasks. A function rather than a subquery on
-- onecms.cases: PostgreSQL may hash such a subquery, evaluating the cases' policies over the whole table for one
-- row. SECURITY DEFINER (owner's rights, past the policies); it answers only from the caller's settings.
CREATE OR REPLACE FUNCTION onecms.case_visible_to_acting_user(p_case_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM onecms.cases c
         WHERE c.case_id = p_case_id
           AND (c.assigned_to_id = entitlements.acting_user_id() OR c.created_by_id = entitlements.acting_user_id()
                OR onecms.case_reached_by_acting_queues(c.case_id))
    );
END
$$;

-- onecms.process_instance_of_visible_case: whether a process instance moves a case the acting user may reach
-- (onecms.case_visible_to_acting_user), for the policies with which the cases app lets a case's reader read its
-- instances and tasks. SECURITY DEFINER (owner's rights, past the policies); it answers only from the caller's
-- settings.
CREATE OR REPLACE FUNCTION onecms.process_instance_of_visible_case(p_process_instance_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM onecms.case_workflow_mapping m
         WHERE m.process_instance_id = p_process_instance_id AND onecms.case_visible_to_acting_user(m.case_id)
    );
END
$$;

-- onecms.task_of_visible_case: whether a task belongs to a case the acting user may reach
-- (onecms.process_instance_of_visible_case), for the policy with which the cases app lets a case's reader read its
-- tasks' history. SECURITY DEFINER (owner's rights, past the policies); it answers only from the caller's settings.
CREATE OR REPLACE FUNCTION onecms.task_of_visible_case(p_task_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM flowable.workflow_tasks t
         WHERE t.task_id = p_task_id AND t.process_instance_id IS NOT NULL
           AND onecms.process_instance_of_visible_case(t.process_instance_id)
    );
END
$$;

-- onecms.mapping_ids_with_hops_to: the mappings whose routing history reached one of p_queues, read through
-- idx_case_mapping_hop_queues. Under row-level security PostgreSQL will not use that index for the application's
-- own query: `?|` is not leakproof, so it may only run after the mappings' policies, on every row. This reads the
-- index as the table's owner (SECURITY DEFINER), and only within the caller's row scope: the queues the acting user
-- supervises (the hop arm of onecms.case_reached_by_acting_queues), or any queue in the system or superuser scope.
-- It answers mapping ids only; the rows stay behind their policies. cases/selectors.py: _supervised_case_ids.
CREATE OR REPLACE FUNCTION onecms.mapping_ids_with_hops_to(p_queues text[])
RETURNS SETOF bigint
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms AS $$
    SELECT m.mapping_id
      FROM onecms.case_workflow_mapping m
     WHERE jsonb_path_query_array(m.routing_history, '$[*].to_queue')
           ?| CASE WHEN entitlements.acting_scope() IN ('system', 'superuser') THEN p_queues
                   ELSE ARRAY(SELECT unnest(p_queues)
                              INTERSECT SELECT unnest(entitlements.acting_supervised_queue_names())) END
$$;
"""

FUNCTIONS_REVERSE = """
DROP FUNCTION IF EXISTS onecms.mapping_ids_with_hops_to(text[]);
DROP FUNCTION IF EXISTS onecms.task_of_visible_case(bigint);
DROP FUNCTION IF EXISTS onecms.process_instance_of_visible_case(bigint);
DROP FUNCTION IF EXISTS onecms.case_visible_to_acting_user(bigint);
DROP FUNCTION IF EXISTS onecms.case_reached_by_acting_queues(bigint);
"""

POLICIES = """
-- onecms.case_events: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the case events.
ALTER TABLE onecms.case_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_events_all_for_system ON onecms.case_events;
CREATE POLICY case_events_all_for_system ON onecms.case_events
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- onecms.case_events: an active superuser reads every row of the case events (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE onecms.case_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_events_all_read_by_superuser ON onecms.case_events;
CREATE POLICY case_events_all_read_by_superuser ON onecms.case_events
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- onecms.case_events: read and written with their case: where the acting user may reach the case
-- (onecms.case_visible_to_acting_user, the rule of the cases' policies), they may reach its events.
ALTER TABLE onecms.case_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_events_of_visible_cases ON onecms.case_events;
CREATE POLICY case_events_of_visible_cases ON onecms.case_events
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_visible_to_acting_user(case_id))
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_visible_to_acting_user(case_id));

-- onecms.case_subjects: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the case subjects.
ALTER TABLE onecms.case_subjects ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_subjects_all_for_system ON onecms.case_subjects;
CREATE POLICY case_subjects_all_for_system ON onecms.case_subjects
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- onecms.case_subjects: an active superuser reads every row of the case subjects (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE onecms.case_subjects ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_subjects_all_read_by_superuser ON onecms.case_subjects;
CREATE POLICY case_subjects_all_read_by_superuser ON onecms.case_subjects
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- onecms.case_subjects: read and written with their case: where the acting user may reach the case
-- (onecms.case_visible_to_acting_user, the rule of the cases' policies), they may reach its subjects.
ALTER TABLE onecms.case_subjects ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_subjects_of_visible_cases ON onecms.case_subjects;
CREATE POLICY case_subjects_of_visible_cases ON onecms.case_subjects
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_visible_to_acting_user(case_id))
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_visible_to_acting_user(case_id));

-- onecms.case_workflow_mapping: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the case workflow mappings.
ALTER TABLE onecms.case_workflow_mapping ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_workflow_mapping_all_for_system ON onecms.case_workflow_mapping;
CREATE POLICY case_workflow_mapping_all_for_system ON onecms.case_workflow_mapping
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- onecms.case_workflow_mapping: an active superuser reads every row of the case workflow mappings (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE onecms.case_workflow_mapping ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_workflow_mapping_all_read_by_superuser ON onecms.case_workflow_mapping;
CREATE POLICY case_workflow_mapping_all_read_by_superuser ON onecms.case_workflow_mapping
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- onecms.case_workflow_mapping: read and written with their case: where the acting user may reach the case
-- (onecms.case_visible_to_acting_user, the rule of the cases' policies), they may reach its mappings.
ALTER TABLE onecms.case_workflow_mapping ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_workflow_mapping_of_visible_cases ON onecms.case_workflow_mapping;
CREATE POLICY case_workflow_mapping_of_visible_cases ON onecms.case_workflow_mapping
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_visible_to_acting_user(case_id))
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_visible_to_acting_user(case_id));

-- onecms.cases: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the cases.
ALTER TABLE onecms.cases ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS cases_all_for_system ON onecms.cases;
CREATE POLICY cases_all_for_system ON onecms.cases
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- onecms.cases: an active superuser reads every row of the cases (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE onecms.cases ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS cases_all_read_by_superuser ON onecms.cases;
CREATE POLICY cases_all_read_by_superuser ON onecms.cases
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- onecms.cases: the acting user reads and writes the cases assigned to them or opened by them, as
-- cases/selectors.py: cases_visible_to shows them.
ALTER TABLE onecms.cases ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS cases_assigned_to_or_created_by_acting_user ON onecms.cases;
CREATE POLICY cases_assigned_to_or_created_by_acting_user ON onecms.cases
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING (assigned_to_id = (SELECT entitlements.acting_user_id()) OR created_by_id = (SELECT entitlements.acting_user_id()))
    WITH CHECK (assigned_to_id = (SELECT entitlements.acting_user_id()) OR created_by_id = (SELECT entitlements.acting_user_id()));

-- onecms.cases: the acting user reads and writes a case whose work is in their queues now (a task of its
-- workflows: cases/selectors.py: cases_visible_to) or passed through a queue they supervise (a routing hop to it: the
-- supervisor console's rule, cases/selectors.py: supervised_case_filter).
ALTER TABLE onecms.cases ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS cases_reached_by_acting_queues ON onecms.cases;
CREATE POLICY cases_reached_by_acting_queues ON onecms.cases
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_reached_by_acting_queues(case_id))
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_reached_by_acting_queues(case_id));

-- flowable.process_instances (from the cases app): the acting user reads the process instances of a case they
-- may reach.
ALTER TABLE flowable.process_instances ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS process_instances_of_visible_cases ON flowable.process_instances;
CREATE POLICY process_instances_of_visible_cases ON flowable.process_instances
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.process_instance_of_visible_case(process_instance_id));

-- flowable.task_history (from the cases app): the acting user reads the events of every task of a case they may
-- reach, as the supervisor console's timeline lists them (onecms.task_of_visible_case).
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_of_visible_cases ON flowable.task_history;
CREATE POLICY task_history_of_visible_cases ON flowable.task_history
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.task_of_visible_case(task_id));

-- flowable.workflow_tasks (from the cases app): the acting user reads every task of a case they may reach, as
-- the case page, the case API and the supervisor console's timeline list them. Only asked of tasks outside the
-- user's queues.
ALTER TABLE flowable.workflow_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_of_visible_cases ON flowable.workflow_tasks;
CREATE POLICY workflow_tasks_of_visible_cases ON flowable.workflow_tasks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (process_instance_id IS NOT NULL AND (SELECT entitlements.acting_user_id()) IS NOT NULL AND queue_name <> ALL ((SELECT entitlements.acting_queue_names())::text[])
           AND onecms.process_instance_of_visible_case(process_instance_id));
"""

POLICIES_REVERSE = """
DROP POLICY IF EXISTS case_events_all_for_system ON onecms.case_events;
DROP POLICY IF EXISTS case_events_all_read_by_superuser ON onecms.case_events;
DROP POLICY IF EXISTS case_events_of_visible_cases ON onecms.case_events;
DROP POLICY IF EXISTS case_subjects_all_for_system ON onecms.case_subjects;
DROP POLICY IF EXISTS case_subjects_all_read_by_superuser ON onecms.case_subjects;
DROP POLICY IF EXISTS case_subjects_of_visible_cases ON onecms.case_subjects;
DROP POLICY IF EXISTS case_workflow_mapping_all_for_system ON onecms.case_workflow_mapping;
DROP POLICY IF EXISTS case_workflow_mapping_all_read_by_superuser ON onecms.case_workflow_mapping;
DROP POLICY IF EXISTS case_workflow_mapping_of_visible_cases ON onecms.case_workflow_mapping;
DROP POLICY IF EXISTS cases_all_for_system ON onecms.cases;
DROP POLICY IF EXISTS cases_all_read_by_superuser ON onecms.cases;
DROP POLICY IF EXISTS cases_assigned_to_or_created_by_acting_user ON onecms.cases;
DROP POLICY IF EXISTS cases_reached_by_acting_queues ON onecms.cases;
DROP POLICY IF EXISTS process_instances_of_visible_cases ON flowable.process_instances;
DROP POLICY IF EXISTS task_history_of_visible_cases ON flowable.task_history;
DROP POLICY IF EXISTS workflow_tasks_of_visible_cases ON flowable.workflow_tasks;
ALTER TABLE onecms.cases DISABLE ROW LEVEL SECURITY;
ALTER TABLE onecms.case_events DISABLE ROW LEVEL SECURITY;
ALTER TABLE onecms.case_workflow_mapping DISABLE ROW LEVEL SECURITY;
ALTER TABLE onecms.case_subjects DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [("cases", "0007_case_tombstones_append_only"), ("tasks", "0025_row_level_security")]
    operations = [
        migrations.RunSQL(FUNCTIONS, reverse_sql=FUNCTIONS_REVERSE),
        migrations.RunSQL(POLICIES, reverse_sql=POLICIES_REVERSE),
    ]
