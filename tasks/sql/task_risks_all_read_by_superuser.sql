-- flowable.task_risks: an active superuser reads every forecast, as they read every task.
ALTER TABLE flowable.task_risks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_risks_all_read_by_superuser ON flowable.task_risks;
CREATE POLICY task_risks_all_read_by_superuser ON flowable.task_risks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
