-- flowable.notifications: the acting user reads, marks read and deletes their own notifications, and nobody else's
-- (tasks/notifications.py: a user's list and bell). Not keyed by queues: a notification is addressed to one person;
-- a superuser's console gets no wider view of them. Others' notifications are written in the system scope.
ALTER TABLE flowable.notifications ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS notifications_of_acting_user ON flowable.notifications;
CREATE POLICY notifications_of_acting_user ON flowable.notifications
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING (recipient_id = (SELECT entitlements.acting_user_id()))
    WITH CHECK (recipient_id = (SELECT entitlements.acting_user_id()));
