-- onecms.cases: the acting user reads and writes a case whose work is in their queues now (a task of its
-- workflows: cases/selectors.py: cases_visible_to) or passed through a queue they supervise (a routing hop to it: the
-- supervisor console's rule, cases/selectors.py: supervised_case_filter).
ALTER TABLE onecms.cases ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS cases_reached_by_acting_queues ON onecms.cases;
CREATE POLICY cases_reached_by_acting_queues ON onecms.cases
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_reached_by_acting_queues(case_id))
    WITH CHECK ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.case_reached_by_acting_queues(case_id));
