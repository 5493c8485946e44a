-- flowable.notifications: a transaction in the system scope (routing, the SLA sweep, alerts and the purge job;
-- entitlements/row_scope.py: system_scope) writes and reads every user's notifications.
ALTER TABLE flowable.notifications ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS notifications_all_for_system ON flowable.notifications;
CREATE POLICY notifications_all_for_system ON flowable.notifications
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
