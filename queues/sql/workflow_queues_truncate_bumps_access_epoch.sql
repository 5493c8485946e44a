-- workflow_queues_truncate_bumps_access_epoch: emptying queues.workflow_queues moves the access epoch (TRUNCATE
-- fires no row trigger).
CREATE OR REPLACE TRIGGER workflow_queues_truncate_bumps_access_epoch
    AFTER TRUNCATE ON queues.workflow_queues
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
