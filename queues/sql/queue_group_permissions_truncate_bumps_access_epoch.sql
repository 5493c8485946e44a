-- queue_group_permissions_truncate_bumps_access_epoch: emptying queues.queue_group_permissions moves the access
-- epoch (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER queue_group_permissions_truncate_bumps_access_epoch
    AFTER TRUNCATE ON queues.queue_group_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
