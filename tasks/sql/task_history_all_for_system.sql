-- flowable.task_history: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the task history.
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_all_for_system ON flowable.task_history;
CREATE POLICY task_history_all_for_system ON flowable.task_history
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
