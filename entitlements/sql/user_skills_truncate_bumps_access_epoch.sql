-- user_skills_truncate_bumps_access_epoch: emptying entitlements.user_skills moves the access epoch (TRUNCATE
-- fires no row trigger).
CREATE OR REPLACE TRIGGER user_skills_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.user_skills
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
