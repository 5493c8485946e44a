-- skills_truncate_bumps_access_epoch: emptying entitlements.skills moves the access epoch (TRUNCATE fires no row
-- trigger).
CREATE OR REPLACE TRIGGER skills_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.skills
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
