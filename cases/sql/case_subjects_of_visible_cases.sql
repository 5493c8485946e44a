-- onecms.case_subjects: read and written with their case: where the acting user may reach the case
-- (onecms.case_visible_to_acting_user, the rule of the cases' policies), they may reach its subjects.
ALTER TABLE onecms.case_subjects ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_subjects_of_visible_cases ON onecms.case_subjects;
CREATE POLICY case_subjects_of_visible_cases ON onecms.case_subjects
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_visible_to_acting_user(case_id))
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_visible_to_acting_user(case_id));
