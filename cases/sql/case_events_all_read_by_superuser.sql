-- onecms.case_events: an active superuser reads every row of the case events (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE onecms.case_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_events_all_read_by_superuser ON onecms.case_events;
CREATE POLICY case_events_all_read_by_superuser ON onecms.case_events
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
