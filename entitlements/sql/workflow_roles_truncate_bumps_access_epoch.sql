-- workflow_roles_truncate_bumps_access_epoch: emptying entitlements.workflow_roles moves the access epoch
-- (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER workflow_roles_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.workflow_roles
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
