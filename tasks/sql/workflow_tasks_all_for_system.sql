-- flowable.workflow_tasks: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the tasks.
ALTER TABLE flowable.workflow_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS workflow_tasks_all_for_system ON flowable.workflow_tasks;
CREATE POLICY workflow_tasks_all_for_system ON flowable.workflow_tasks
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
