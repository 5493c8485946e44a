-- flowable.whatif_runs: the system scope (the what-if job) reads and writes every run.
ALTER TABLE flowable.whatif_runs ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS whatif_runs_all_for_system ON flowable.whatif_runs;
CREATE POLICY whatif_runs_all_for_system ON flowable.whatif_runs
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
