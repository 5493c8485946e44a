-- onecms.cases: an active superuser reads every row of the cases (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE onecms.cases ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS cases_all_read_by_superuser ON onecms.cases;
CREATE POLICY cases_all_read_by_superuser ON onecms.cases
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
