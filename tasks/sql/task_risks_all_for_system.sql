-- flowable.task_risks: a transaction in the system scope (the forecast job and command, an on-demand forecast once
-- tasks/forecast/services.py checked the caller may see the task) reads and writes every forecast.
ALTER TABLE flowable.task_risks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_risks_all_for_system ON flowable.task_risks;
CREATE POLICY task_risks_all_for_system ON flowable.task_risks
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
