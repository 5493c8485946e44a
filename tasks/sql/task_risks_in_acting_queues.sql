-- flowable.task_risks: the acting user reads the forecasts of the queues they may view now, as they read those
-- queues' tasks (workflow_tasks_in_acting_queues); only the system writes forecasts.
ALTER TABLE flowable.task_risks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_risks_in_acting_queues ON flowable.task_risks;
CREATE POLICY task_risks_in_acting_queues ON flowable.task_risks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (queue_name = ANY ((SELECT entitlements.acting_queue_names())::text[]));
