"""The completed-tasks index covers queue and assignee, so the dashboard's per-day figures read the index alone.

Django's RemoveIndex drops the index by its bare name, which misses an index in the `flowable` schema; the drop
is therefore written out with the schema (the state change stays Django's).
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('queues', '0002_business_calendars'),
        ('tasks', '0009_alerts'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS flowable.idx_workflow_tasks_completed",
                    reverse_sql=migrations.RunSQL.noop,
                )
            ],
            state_operations=[
                migrations.RemoveIndex(model_name='workflowtask', name='idx_workflow_tasks_completed'),
            ],
        ),
        migrations.AddIndex(
            model_name='workflowtask',
            index=models.Index(condition=models.Q(('status', 'COMPLETED')), fields=['completed_at'], include=('queue', 'assignee'), name='idx_workflow_tasks_completed'),
        ),
    ]
