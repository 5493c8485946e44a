-- onecms.case_events: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the case events.
ALTER TABLE onecms.case_events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_events_all_for_system ON onecms.case_events;
CREATE POLICY case_events_all_for_system ON onecms.case_events
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
