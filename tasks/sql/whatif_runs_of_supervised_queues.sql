-- flowable.whatif_runs: the acting user reads and asks for the what-if runs of the queues they supervise now (the
-- console's staffing what-if page; tasks/forecast/whatif_services.py checks the same before writing).
ALTER TABLE flowable.whatif_runs ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS whatif_runs_of_supervised_queues ON flowable.whatif_runs;
CREATE POLICY whatif_runs_of_supervised_queues ON flowable.whatif_runs
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING (queue_name = ANY ((SELECT entitlements.acting_supervised_queue_names())::text[]))
    WITH CHECK (queue_name = ANY ((SELECT entitlements.acting_supervised_queue_names())::text[]));
