-- flowable.task_history_archive: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the archived task history.
ALTER TABLE flowable.task_history_archive ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_archive_all_for_system ON flowable.task_history_archive;
CREATE POLICY task_history_archive_all_for_system ON flowable.task_history_archive
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
