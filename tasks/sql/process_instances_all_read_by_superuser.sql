-- flowable.process_instances: an active superuser reads every row of the process instances (entitlements.access.console_shows_every_row);
-- writing still needs their queues, like anyone's.
ALTER TABLE flowable.process_instances ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS process_instances_all_read_by_superuser ON flowable.process_instances;
CREATE POLICY process_instances_all_read_by_superuser ON flowable.process_instances
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');
