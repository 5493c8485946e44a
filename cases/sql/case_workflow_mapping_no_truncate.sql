-- case_workflow_mapping_no_truncate: the mappings and their routing hops are never emptied (TRUNCATE fires no row
-- trigger).
CREATE OR REPLACE TRIGGER case_workflow_mapping_no_truncate
    BEFORE TRUNCATE ON onecms.case_workflow_mapping
    FOR EACH STATEMENT EXECUTE FUNCTION onecms.refuse_routing_hop_rewrite();
ALTER TABLE onecms.case_workflow_mapping ENABLE ALWAYS TRIGGER case_workflow_mapping_no_truncate;
