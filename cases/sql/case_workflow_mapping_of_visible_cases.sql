-- onecms.case_workflow_mapping: read and written with their case: where the acting user may reach the case (its
-- policies apply inside), they may reach its mappings.
ALTER TABLE onecms.case_workflow_mapping ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_workflow_mapping_of_visible_cases ON onecms.case_workflow_mapping;
CREATE POLICY case_workflow_mapping_of_visible_cases ON onecms.case_workflow_mapping
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING (EXISTS (SELECT 1 FROM onecms.cases c WHERE c.case_id = case_workflow_mapping.case_id))
    WITH CHECK (EXISTS (SELECT 1 FROM onecms.cases c WHERE c.case_id = case_workflow_mapping.case_id));
