-- onecms.cases: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the cases.
ALTER TABLE onecms.cases ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS cases_all_for_system ON onecms.cases;
CREATE POLICY cases_all_for_system ON onecms.cases
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
