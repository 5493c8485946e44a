-- user_role_assignments_truncate_bumps_access_epoch: emptying entitlements.user_role_assignments moves the access
-- epoch (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER user_role_assignments_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.user_role_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
