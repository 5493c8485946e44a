-- onecms.case_workflow_mapping: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the case workflow mappings.
ALTER TABLE onecms.case_workflow_mapping ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_workflow_mapping_all_for_system ON onecms.case_workflow_mapping;
CREATE POLICY case_workflow_mapping_all_for_system ON onecms.case_workflow_mapping
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
