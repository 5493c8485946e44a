-- user_skills_bump_access_epoch: every row change of entitlements.user_skills moves the access epoch.
CREATE OR REPLACE TRIGGER user_skills_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON entitlements.user_skills
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
