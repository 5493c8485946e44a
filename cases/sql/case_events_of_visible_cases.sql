-- onecms.case_events: read and written with their case: where the acting user may reach the case
-- (onecms.case_visible_to_acting_user, the rule of the cases' policies), they may reach its events.
ALTER TABLE onecms.case_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_events_of_visible_cases ON onecms.case_events;
CREATE POLICY case_events_of_visible_cases ON onecms.case_events
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_visible_to_acting_user(case_id))
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_visible_to_acting_user(case_id));
