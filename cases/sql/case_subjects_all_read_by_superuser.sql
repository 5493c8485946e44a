-- onecms.case_subjects: an active superuser reads every row of the case subjects (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE onecms.case_subjects ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS case_subjects_all_read_by_superuser ON onecms.case_subjects;
CREATE POLICY case_subjects_all_read_by_superuser ON onecms.case_subjects
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
