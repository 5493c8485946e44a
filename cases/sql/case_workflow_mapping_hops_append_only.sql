-- case_workflow_mapping_hops_append_only: a mapping's routing hops only grow, and a mapping is never deleted
-- (onecms.refuse_routing_hop_rewrite).
CREATE OR REPLACE TRIGGER case_workflow_mapping_hops_append_only
    BEFORE UPDATE OR DELETE ON onecms.case_workflow_mapping
    FOR EACH ROW EXECUTE FUNCTION onecms.refuse_routing_hop_rewrite();
ALTER TABLE onecms.case_workflow_mapping ENABLE ALWAYS TRIGGER case_workflow_mapping_hops_append_only;
