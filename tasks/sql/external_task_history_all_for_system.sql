-- flowable.external_task_history: a transaction in the system scope reads and writes every row of the external task history. Worker accounts
-- reach them only so: tasks/external.py checks their tasks.work_external_tasks permission, then acts in the system
-- scope (external tasks belong to no queue, so no queue-keyed policy could admit them); a request that forgets the
-- check finds no row.
ALTER TABLE flowable.external_task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS external_task_history_all_for_system ON flowable.external_task_history;
CREATE POLICY external_task_history_all_for_system ON flowable.external_task_history
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
