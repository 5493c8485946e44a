-- flowable.whatif_runs: an active superuser reads every run, as they read every queue's figures.
ALTER TABLE flowable.whatif_runs ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS whatif_runs_all_read_by_superuser ON flowable.whatif_runs;
CREATE POLICY whatif_runs_all_read_by_superuser ON flowable.whatif_runs
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
