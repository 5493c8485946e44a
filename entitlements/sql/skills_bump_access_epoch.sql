-- skills_bump_access_epoch: every row change of entitlements.skills moves the access epoch.
CREATE OR REPLACE TRIGGER skills_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON entitlements.skills
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
