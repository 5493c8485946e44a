-- workflow_queues_bump_access_epoch: adding or removing a row of queues.workflow_queues moves the access epoch.
CREATE OR REPLACE TRIGGER workflow_queues_bump_access_epoch
    AFTER INSERT OR DELETE ON queues.workflow_queues
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
