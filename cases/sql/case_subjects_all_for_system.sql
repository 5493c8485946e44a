-- onecms.case_subjects: a transaction in the system scope (beat jobs, management commands, the engine's own
-- steps; entitlements/row_scope.py: system_scope) reads and writes every row of the case subjects.
ALTER TABLE onecms.case_subjects ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_subjects_all_for_system ON onecms.case_subjects;
CREATE POLICY case_subjects_all_for_system ON onecms.case_subjects
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
