-- onecms.cases: the acting user reads and writes the cases assigned to them or opened by them, as
-- cases/selectors.py: cases_visible_to shows them.
ALTER TABLE onecms.cases ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS cases_assigned_to_or_created_by_acting_user ON onecms.cases;
CREATE POLICY cases_assigned_to_or_created_by_acting_user ON onecms.cases
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING (assigned_to_id = (SELECT entitlements.acting_user_id()) OR created_by_id = (SELECT entitlements.acting_user_id()))
    WITH CHECK (assigned_to_id = (SELECT entitlements.acting_user_id()) OR created_by_id = (SELECT entitlements.acting_user_id()));
