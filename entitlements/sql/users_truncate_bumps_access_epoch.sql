-- users_truncate_bumps_access_epoch: emptying entitlements.users moves the access epoch (TRUNCATE fires no row
-- trigger).
CREATE OR REPLACE TRIGGER users_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.users
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
