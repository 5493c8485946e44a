-- users_active_bumps_access_epoch: a change of a user's active flag moves the access epoch (no other column does).
CREATE OR REPLACE TRIGGER users_active_bumps_access_epoch
    AFTER UPDATE OF is_active ON entitlements.users
    FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION entitlements.bump_access_epoch();
