-- workflow_roles_bump_access_epoch: every row change of entitlements.workflow_roles moves the access epoch.
CREATE OR REPLACE TRIGGER workflow_roles_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON entitlements.workflow_roles
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
