"""In-app notifications (flowable.notifications), their row-level security, and the beat jobs around them.

A user reaches only their own notifications; the system scope writes everyone's (routing, the SLA sweep, alerts)
and purges them. The policies are frozen copies of tasks/sql/notifications_*.sql. Beat runs the daily and weekly
summary emails to supervisors and the daily purge of old notifications (tasks/notifications.py, tasks/summaries.py).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

POLICIES = """
-- flowable.notifications: the acting user reads, marks read and deletes their own notifications, and nobody else's
-- (tasks/notifications.py: a user's list and bell). Not keyed by queues: a notification is addressed to one person;
-- a superuser's console gets no wider view of them. Others' notifications are written in the system scope.
ALTER TABLE flowable.notifications ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS notifications_of_acting_user ON flowable.notifications;
CREATE POLICY notifications_of_acting_user ON flowable.notifications
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING (recipient_id = (SELECT entitlements.acting_user_id()))
    WITH CHECK (recipient_id = (SELECT entitlements.acting_user_id()));

-- flowable.notifications: a transaction in the system scope (routing, the SLA sweep, alerts and the purge job;
-- entitlements/row_scope.py: system_scope) writes and reads every user's notifications.
ALTER TABLE flowable.notifications ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS notifications_all_for_system ON flowable.notifications;
CREATE POLICY notifications_all_for_system ON flowable.notifications
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');
"""

POLICIES_REVERSE = """
DROP POLICY IF EXISTS notifications_of_acting_user ON flowable.notifications;
DROP POLICY IF EXISTS notifications_all_for_system ON flowable.notifications;
ALTER TABLE flowable.notifications DISABLE ROW LEVEL SECURITY;
"""

# (name, task, crontab fields, keyword arguments as JSON); times in CELERY_TIMEZONE.
CRONTAB_JOBS = [
    ("Daily summary emails", "workflow.send_summaries", {"minute": "0", "hour": "7"}, '{"period": "daily"}'),
    (
        "Weekly summary emails",
        "workflow.send_summaries",
        {"minute": "0", "hour": "7", "day_of_week": "1"},
        '{"period": "weekly"}',
    ),
    ("Purge old notifications", "workflow.purge_notifications", {"minute": "20", "hour": "4"}, "{}"),
]


def create_schedules(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, fields, kwargs in CRONTAB_JOBS:
        crontab, _ = crontab_model.objects.get_or_create(
            **{"day_of_week": "*", "day_of_month": "*", "month_of_year": "*", **fields}
        )
        task_model.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab, "kwargs": kwargs})


def remove_schedules(apps, schema_editor):
    names = [job[0] for job in CRONTAB_JOBS]
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0037_decision_definitions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name='Notification',
            fields=[
                ('notification_id', models.BigAutoField(primary_key=True, serialize=False)),
                ('kind', models.CharField(choices=[('TASK_ASSIGNED', 'Task assigned to you'), ('TASK_ESCALATED', 'Your task escalated'), ('TASK_AT_RISK', 'Your task is at risk'), ('SLA_BREACH', 'SLA breach'), ('CAPACITY', 'Queue over capacity')], max_length=20)),
                ('text', models.CharField(max_length=500)),
                ('link', models.CharField(blank=True, help_text='A path on this site that the notice is about.', max_length=300)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('read_at', models.DateTimeField(blank=True, null=True)),
                ('recipient', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'flowable"."notifications',
                'ordering': ['-created_at', '-notification_id'],
                'indexes': [models.Index(fields=['recipient', '-created_at'], name='idx_notifications_recipient'), models.Index(condition=models.Q(('read_at__isnull', True)), fields=['recipient'], name='idx_notifications_unread'), models.Index(fields=['created_at'], name='idx_notifications_created')],
                'constraints': [models.CheckConstraint(condition=models.Q(('kind__in', ['TASK_ASSIGNED', 'TASK_ESCALATED', 'TASK_AT_RISK', 'SLA_BREACH', 'CAPACITY'])), name='notification_kind_valid'), models.CheckConstraint(condition=models.Q(('link', ''), ('link__startswith', '/'), _connector='OR'), name='notification_link_on_this_site')],
            },
        ),
        migrations.RunSQL(POLICIES, reverse_sql=POLICIES_REVERSE),
        migrations.RunPython(create_schedules, remove_schedules),
    ]
