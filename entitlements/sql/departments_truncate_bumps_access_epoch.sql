-- departments_truncate_bumps_access_epoch: emptying entitlements.departments moves the access epoch (TRUNCATE
-- fires no row trigger).
CREATE OR REPLACE TRIGGER departments_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.departments
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
