-- case_events_append_only: rows of onecms.case_events are never updated or deleted (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER case_events_append_only
    BEFORE UPDATE OR DELETE ON onecms.case_events
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE onecms.case_events ENABLE ALWAYS TRIGGER case_events_append_only;
