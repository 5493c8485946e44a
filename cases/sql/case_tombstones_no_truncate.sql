-- case_tombstones_no_truncate: onecms.case_tombstones is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER case_tombstones_no_truncate
    BEFORE TRUNCATE ON onecms.case_tombstones
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE onecms.case_tombstones ENABLE ALWAYS TRIGGER case_tombstones_no_truncate;
