-- flowable.process_instances: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the process instances.
ALTER TABLE flowable.process_instances ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS process_instances_all_for_system ON flowable.process_instances;
CREATE POLICY process_instances_all_for_system ON flowable.process_instances
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
