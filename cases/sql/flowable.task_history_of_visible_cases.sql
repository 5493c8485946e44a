-- flowable.task_history (from the cases app): the acting user reads the events of every task of a case they may
-- reach, as the supervisor console's timeline lists them (onecms.task_of_visible_case).
ALTER TABLE flowable.task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_history_of_visible_cases ON flowable.task_history;
CREATE POLICY task_history_of_visible_cases ON flowable.task_history
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.task_of_visible_case(task_id));
