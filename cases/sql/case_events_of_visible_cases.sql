-- onecms.case_events: read and written with their case: where the acting user may reach the case (its
-- policies apply inside), they may reach its events.
ALTER TABLE onecms.case_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_events_of_visible_cases ON onecms.case_events;
CREATE POLICY case_events_of_visible_cases ON onecms.case_events
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING (EXISTS (SELECT 1 FROM onecms.cases c WHERE c.case_id = case_events.case_id))
    WITH CHECK (EXISTS (SELECT 1 FROM onecms.cases c WHERE c.case_id = case_events.case_id));
