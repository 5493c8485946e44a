-- user_role_assignments_bump_access_epoch: every row change of entitlements.user_role_assignments moves the access
-- epoch.
CREATE OR REPLACE TRIGGER user_role_assignments_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON entitlements.user_role_assignments
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
