-- case_tombstones_append_only: what is left of a deleted case is never updated or deleted
-- (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER case_tombstones_append_only
    BEFORE UPDATE OR DELETE ON onecms.case_tombstones
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE onecms.case_tombstones ENABLE ALWAYS TRIGGER case_tombstones_append_only;
