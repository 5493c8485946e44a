"""Row-level security on tasks, process instances, task history and their archive: defence behind tasks/selectors.py.

Each table gets policies TO PUBLIC (no role is named: the roles may not exist when this runs) keyed on the row
scope entitlements 0014 sets per transaction: the system scope reaches every row, a superuser reads every row,
a user reaches the tasks of the queues they may view (and reads the other tasks of those tasks' instances, and
those tasks' history). A transaction with no scope reaches nothing. Table owners are not subject to them (no
FORCE): migrations, and the maintenance and reporting roles (BYPASSRLS), are not filtered. The cases app adds the
tasks and instances of the cases a user may reach. docs/row-level-security.md has the table of who reaches what.

flowable.claim_next_for_user now scopes a call made outside any scope to the claimant's workable queues, and
refuses a claim for another user than the one the transaction acts for.
"""
from django.db import migrations

FUNCTIONS = """
-- flowable.process_instance_in_acting_queues: whether a process instance has a task in the acting user's queues
-- (entitlements.acting_queue_names), for the row-level security policies of process instances and of the tasks
-- that follow their instance. SECURITY DEFINER: it reads workflow_tasks as the tables' owner, past their policies,
-- since a policy of workflow_tasks may not query workflow_tasks under its own policies (PostgreSQL refuses the
-- recursion). It answers only from the caller's settings, and only this one question. PL/pgSQL, as every function
-- a policy calls per row: it keeps its plan for the session, where a SQL function would plan its query at each
-- statement (a third more time per claim, measured).
CREATE OR REPLACE FUNCTION flowable.process_instance_in_acting_queues(p_process_instance_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, flowable AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM flowable.workflow_tasks t
         WHERE t.process_instance_id = p_process_instance_id
           AND t.queue_name = ANY (entitlements.acting_queue_names())
    );
END
$$;

-- flowable.task_reached_by_acting_queues: whether a task is in the acting user's queues, or belongs to a process
-- instance one of whose tasks is (entitlements.acting_queue_names): the tasks' own policies, asked by the policy of
-- their history. A function, not a subquery in the policy: PostgreSQL may turn a policy's EXISTS into a hash of
-- every row the subquery reaches, and would then evaluate the tasks' policies over the whole table for one event.
-- SECURITY DEFINER (owner's rights, past the tasks' policies); it answers only from the caller's settings.
CREATE OR REPLACE FUNCTION flowable.task_reached_by_acting_queues(p_task_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, flowable AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM flowable.workflow_tasks t
         WHERE t.task_id = p_task_id
           AND (t.queue_name = ANY (entitlements.acting_queue_names())
                OR (t.process_instance_id IS NOT NULL
                    AND flowable.process_instance_in_acting_queues(t.process_instance_id)))
    );
END
$$;

-- flowable.task_in_acting_queues: whether a task is in the acting user's queues (entitlements.acting_queue_names),
-- for the policy by which they append history to it. SECURITY DEFINER (owner's rights, past the tasks' policies),
-- as flowable.task_reached_by_acting_queues; it answers only from the caller's settings.
CREATE OR REPLACE FUNCTION flowable.task_in_acting_queues(p_task_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, flowable AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM flowable.workflow_tasks t
         WHERE t.task_id = p_task_id AND t.queue_name = ANY (entitlements.acting_queue_names())
    );
END
$$;

-- flowable.archived_task_in_acting_queues: whether an archived task was in one of the acting user's queues
-- (entitlements.acting_queue_names), for the policy of the archived history. SECURITY DEFINER (owner's rights,
-- past the archive's policies), as flowable.task_reached_by_acting_queues; it answers only from the caller's
-- settings.
CREATE OR REPLACE FUNCTION flowable.archived_task_in_acting_queues(p_task_id bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, flowable AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM flowable.workflow_tasks_archive t
         WHERE t.task_id = p_task_id AND t.queue_name = ANY (entitlements.acting_queue_names())
    );
END
$$;

-- flowable.claim_next_for_user: claim-next for a user, with the user's workable queues and skills resolved in the
-- database (entitlements.work_access_for, remembered between claims), optionally narrowed to requested queues.
-- The whole claim-next path is one statement from Python.
--
-- It runs as its caller, under row-level security: the claim reads and writes the tasks of the user's workable
-- queues, which the row scope of a transaction acting for that user covers (they are among the queues the user
-- may view), and so does the system scope. A transaction that acts for nobody (a claim sent as one statement,
-- outside a transaction, from flowable.claim_next_task's callers or a benchmark) gets the user's scope narrowed to
-- those queues for this call only, with no extra round trip; one acting for another user is refused.
CREATE OR REPLACE FUNCTION flowable.claim_next_for_user(
    p_user_id bigint, p_requested_queues text[] DEFAULT NULL, p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql AS $$
DECLARE
    v_queues text[];
    v_skills text[];
    v_acting bigint := entitlements.acting_user_id();
    v_scoped_here boolean := false;
BEGIN
    IF v_acting IS DISTINCT FROM p_user_id AND entitlements.acting_scope() <> 'system' THEN
        IF v_acting IS NOT NULL OR entitlements.acting_scope() <> '' THEN
            RAISE EXCEPTION 'a transaction acting for user % may not claim for user %', v_acting, p_user_id
                  USING ERRCODE = 'insufficient_privilege';
        END IF;
        v_scoped_here := true;
    END IF;
    SELECT a.queue_names, a.skills INTO v_queues, v_skills FROM entitlements.work_access_for(p_user_id) a;
    IF p_requested_queues IS NOT NULL THEN
        v_queues := ARRAY(SELECT q FROM unnest(v_queues) AS q WHERE q = ANY (p_requested_queues));
    END IF;
    IF cardinality(v_queues) = 0 THEN
        RETURN;
    END IF;
    IF v_scoped_here THEN
        PERFORM set_config('workflow.user_id', p_user_id::text, true),
                set_config('workflow.queue_names', v_queues::text, true);
    END IF;
    RETURN QUERY SELECT * FROM flowable.claim_next_task(p_user_id, v_queues, v_skills, p_via_account_id);
    IF v_scoped_here THEN
        PERFORM set_config('workflow.user_id', '', true), set_config('workflow.queue_names', '', true);
    END IF;
END
$$;
"""

FUNCTIONS_REVERSE = """
-- flowable.claim_next_for_user: claim-next for a user, with the user's workable queues and skills resolved in the
-- database (entitlements.work_access_for, remembered between claims), optionally narrowed to requested queues.
-- The whole claim-next path is one statement from Python.
CREATE OR REPLACE FUNCTION flowable.claim_next_for_user(
    p_user_id bigint, p_requested_queues text[] DEFAULT NULL, p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql AS $$
DECLARE
    v_queues text[];
    v_skills text[];
BEGIN
    SELECT a.queue_names, a.skills INTO v_queues, v_skills FROM entitlements.work_access_for(p_user_id) a;
    IF p_requested_queues IS NOT NULL THEN
        v_queues := ARRAY(SELECT q FROM unnest(v_queues) AS q WHERE q = ANY (p_requested_queues));
    END IF;
    IF cardinality(v_queues) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM flowable.claim_next_task(p_user_id, v_queues, v_skills, p_via_account_id);
END
$$;

DROP FUNCTION IF EXISTS flowable.archived_task_in_acting_queues(bigint);
DROP FUNCTION IF EXISTS flowable.task_in_acting_queues(bigint);
DROP FUNCTION IF EXISTS flowable.task_reached_by_acting_queues(bigint);
DROP FUNCTION IF EXISTS flowable.process_instance_in_acting_queues(bigint);
"""

POLICIES = """
-- flowable.process_instances: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the process instances.
ALTER TABLE flowable.process_instances ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS process_instances_all_for_system ON flowable.process_instances;
CREATE POLICY process_instances_all_for_system ON flowable.process_instances
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- flowable.process_instances: an active superuser reads every row of the process instances (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE flowable.process_instances ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS process_instances_all_read_by_superuser ON flowable.process_instances;
CREATE POLICY process_instances_all_read_by_superuser ON flowable.process_instances
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- flowable.process_instances: the acting user reads and writes (suspend, resume) an instance one of whose tasks
-- is in their queues, as tasks/api.py: ProcessViewSet finds them. Starting one is the engine's, in the system scope.
ALTER TABLE flowable.process_instances ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS process_instances_with_tasks_in_acting_queues ON flowable.process_instances;
CREATE POLICY process_instances_with_tasks_in_acting_queues ON flowable.process_instances
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND flowable.process_instance_in_acting_queues(process_instance_id))
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND flowable.process_instance_in_acting_queues(process_instance_id));

-- flowable.task_history: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the task history.
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_all_for_system ON flowable.task_history;
CREATE POLICY task_history_all_for_system ON flowable.task_history
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- flowable.task_history: an active superuser reads every row of the task history (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_all_read_by_superuser ON flowable.task_history;
CREATE POLICY task_history_all_read_by_superuser ON flowable.task_history
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- flowable.task_history: the acting user appends events to the tasks of their queues (claim, complete, comment).
-- Nothing else: history is append-only, and events of tasks elsewhere are the system's.
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_appended_in_acting_queues ON flowable.task_history;
CREATE POLICY task_history_appended_in_acting_queues ON flowable.task_history
    AS PERMISSIVE FOR INSERT TO PUBLIC
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND flowable.task_in_acting_queues(task_id));

-- flowable.task_history_archive: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the archived task history.
ALTER TABLE flowable.task_history_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_archive_all_for_system ON flowable.task_history_archive;
CREATE POLICY task_history_archive_all_for_system ON flowable.task_history_archive
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- flowable.task_history_archive: an active superuser reads every row of the archived task history (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE flowable.task_history_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_archive_all_read_by_superuser ON flowable.task_history_archive;
CREATE POLICY task_history_archive_all_read_by_superuser ON flowable.task_history_archive
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- flowable.task_history_archive: an archived event is read with its archived task (its queue among the acting
-- user's: flowable.archived_task_in_acting_queues).
ALTER TABLE flowable.task_history_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_archive_of_visible_tasks ON flowable.task_history_archive;
CREATE POLICY task_history_archive_of_visible_tasks ON flowable.task_history_archive
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND flowable.archived_task_in_acting_queues(task_id));

-- flowable.task_history: an event is read with its task: the acting user reads the events of the tasks in their
-- queues and of the other tasks of those tasks' instances (flowable.task_reached_by_acting_queues).
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_of_visible_tasks ON flowable.task_history;
CREATE POLICY task_history_of_visible_tasks ON flowable.task_history
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND flowable.task_reached_by_acting_queues(task_id));

-- flowable.workflow_tasks: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the tasks.
ALTER TABLE flowable.workflow_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_all_for_system ON flowable.workflow_tasks;
CREATE POLICY workflow_tasks_all_for_system ON flowable.workflow_tasks
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- flowable.workflow_tasks: an active superuser reads every row of the tasks (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE flowable.workflow_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_all_read_by_superuser ON flowable.workflow_tasks;
CREATE POLICY workflow_tasks_all_read_by_superuser ON flowable.workflow_tasks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- flowable.workflow_tasks_archive: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the archived tasks.
ALTER TABLE flowable.workflow_tasks_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_archive_all_for_system ON flowable.workflow_tasks_archive;
CREATE POLICY workflow_tasks_archive_all_for_system ON flowable.workflow_tasks_archive
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- flowable.workflow_tasks_archive: an active superuser reads every row of the archived tasks (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE flowable.workflow_tasks_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_archive_all_read_by_superuser ON flowable.workflow_tasks_archive;
CREATE POLICY workflow_tasks_archive_all_read_by_superuser ON flowable.workflow_tasks_archive
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- flowable.workflow_tasks_archive: the acting user reads the archived tasks of the queues they may view now, as
-- tasks/selectors.py: task_or_archived_for_user does. Only the archive job (system scope) writes. On the partitioned
-- table: a query naming a partition itself is not filtered (the application never does).
ALTER TABLE flowable.workflow_tasks_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_archive_in_acting_queues ON flowable.workflow_tasks_archive;
CREATE POLICY workflow_tasks_archive_in_acting_queues ON flowable.workflow_tasks_archive
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (queue_name = ANY ((SELECT entitlements.acting_queue_names())::text[]));

-- flowable.workflow_tasks: the acting user reads and writes the tasks of the queues they may view now (the one
-- access rule, entitlements.row_scope_set), as tasks/selectors.py: tasks_visible_to does. A task moved or created
-- outside them is written in the system scope (the engine, routing, supervisors' moves to configured targets).
ALTER TABLE flowable.workflow_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_in_acting_queues ON flowable.workflow_tasks;
CREATE POLICY workflow_tasks_in_acting_queues ON flowable.workflow_tasks
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING (queue_name = ANY ((SELECT entitlements.acting_queue_names())::text[]))
    WITH CHECK (queue_name = ANY ((SELECT entitlements.acting_queue_names())::text[]));

-- flowable.workflow_tasks: the acting user reads every task of a process instance one of whose tasks is in their
-- queues, as the process API lists them (tasks/api.py: ProcessSerializer). Only asked of tasks outside the queues.
ALTER TABLE flowable.workflow_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_of_instances_in_acting_queues ON flowable.workflow_tasks;
CREATE POLICY workflow_tasks_of_instances_in_acting_queues ON flowable.workflow_tasks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (process_instance_id IS NOT NULL AND (SELECT entitlements.acting_user_id()) IS NOT NULL AND queue_name <> ALL ((SELECT entitlements.acting_queue_names())::text[])
           AND flowable.process_instance_in_acting_queues(process_instance_id));
"""

POLICIES_REVERSE = """
DROP POLICY IF EXISTS process_instances_all_for_system ON flowable.process_instances;
DROP POLICY IF EXISTS process_instances_all_read_by_superuser ON flowable.process_instances;
DROP POLICY IF EXISTS process_instances_with_tasks_in_acting_queues ON flowable.process_instances;
DROP POLICY IF EXISTS task_history_all_for_system ON flowable.task_history;
DROP POLICY IF EXISTS task_history_all_read_by_superuser ON flowable.task_history;
DROP POLICY IF EXISTS task_history_appended_in_acting_queues ON flowable.task_history;
DROP POLICY IF EXISTS task_history_archive_all_for_system ON flowable.task_history_archive;
DROP POLICY IF EXISTS task_history_archive_all_read_by_superuser ON flowable.task_history_archive;
DROP POLICY IF EXISTS task_history_archive_of_visible_tasks ON flowable.task_history_archive;
DROP POLICY IF EXISTS task_history_of_visible_tasks ON flowable.task_history;
DROP POLICY IF EXISTS workflow_tasks_all_for_system ON flowable.workflow_tasks;
DROP POLICY IF EXISTS workflow_tasks_all_read_by_superuser ON flowable.workflow_tasks;
DROP POLICY IF EXISTS workflow_tasks_archive_all_for_system ON flowable.workflow_tasks_archive;
DROP POLICY IF EXISTS workflow_tasks_archive_all_read_by_superuser ON flowable.workflow_tasks_archive;
DROP POLICY IF EXISTS workflow_tasks_archive_in_acting_queues ON flowable.workflow_tasks_archive;
DROP POLICY IF EXISTS workflow_tasks_in_acting_queues ON flowable.workflow_tasks;
DROP POLICY IF EXISTS workflow_tasks_of_instances_in_acting_queues ON flowable.workflow_tasks;
ALTER TABLE flowable.workflow_tasks DISABLE ROW LEVEL SECURITY;
ALTER TABLE flowable.process_instances DISABLE ROW LEVEL SECURITY;
ALTER TABLE flowable.task_history DISABLE ROW LEVEL SECURITY;
ALTER TABLE flowable.workflow_tasks_archive DISABLE ROW LEVEL SECURITY;
ALTER TABLE flowable.task_history_archive DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [("tasks", "0024_sealed_variables_and_comments"), ("entitlements", "0015_row_scope")]
    operations = [
        migrations.RunSQL(FUNCTIONS, reverse_sql=FUNCTIONS_REVERSE),
        migrations.RunSQL(POLICIES, reverse_sql=POLICIES_REVERSE),
    ]
