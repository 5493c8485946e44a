-- queue_user_permissions_truncate_bumps_access_epoch: emptying queues.queue_user_permissions moves the access
-- epoch (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER queue_user_permissions_truncate_bumps_access_epoch
    AFTER TRUNCATE ON queues.queue_user_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
