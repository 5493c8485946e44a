-- queue_user_permissions_bump_access_epoch: every row change of queues.queue_user_permissions moves the access
-- epoch.
CREATE OR REPLACE TRIGGER queue_user_permissions_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON queues.queue_user_permissions
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
