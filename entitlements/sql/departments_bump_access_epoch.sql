-- departments_bump_access_epoch: every row change of entitlements.departments moves the access epoch.
CREATE OR REPLACE TRIGGER departments_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON entitlements.departments
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
