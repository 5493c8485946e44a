-- flowable.process_instances (from the cases app): the acting user reads the process instances of a case they
-- may reach.
ALTER TABLE flowable.process_instances ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS process_instances_of_visible_cases ON flowable.process_instances;
CREATE POLICY process_instances_of_visible_cases ON flowable.process_instances
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_user_id()) IS NOT NULL AND onecms.process_instance_of_visible_case(process_instance_id));
