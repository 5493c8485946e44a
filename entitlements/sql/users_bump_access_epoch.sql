-- users_bump_access_epoch: adding or removing a row of entitlements.users moves the access epoch.
CREATE OR REPLACE TRIGGER users_bump_access_epoch
    AFTER INSERT OR DELETE ON entitlements.users
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
