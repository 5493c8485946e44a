-- case_events_no_truncate: onecms.case_events is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER case_events_no_truncate
    BEFORE TRUNCATE ON onecms.case_events
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE onecms.case_events ENABLE ALWAYS TRIGGER case_events_no_truncate;
