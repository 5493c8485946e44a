-- onecms.case_workflow_mapping: an active superuser reads every row of the case workflow mappings (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE onecms.case_workflow_mapping ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_workflow_mapping_all_read_by_superuser ON onecms.case_workflow_mapping;
CREATE POLICY case_workflow_mapping_all_read_by_superuser ON onecms.case_workflow_mapping
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
