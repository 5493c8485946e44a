"""task_history's event types gain MIGRATED: an open task's process instance moved to another version."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0043_task_risks_queue_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='taskhistory',
            name='task_event_type_valid',
        ),
        migrations.AlterField(
            model_name='taskhistory',
            name='event_type',
            field=models.CharField(choices=[('CREATED', 'Created'), ('CLAIMED', 'Claimed'), ('RELEASED', 'Released'), ('COMPLETED', 'Completed'), ('REASSIGNED', 'Reassigned'), ('DELEGATED', 'Delegated'), ('RESOLVED', 'Resolved'), ('ESCALATED', 'Escalated'), ('MOVED', 'Moved'), ('PRIORITY_CHANGED', 'Priority Changed'), ('CANCELLED', 'Cancelled'), ('COMMENTED', 'Commented'), ('SUSPENDED', 'Suspended'), ('RESUMED', 'Resumed'), ('MIGRATED', 'Migrated')], max_length=30),
        ),
        migrations.AddConstraint(
            model_name='taskhistory',
            constraint=models.CheckConstraint(condition=models.Q(('event_type__in', ['CREATED', 'CLAIMED', 'RELEASED', 'COMPLETED', 'REASSIGNED', 'DELEGATED', 'RESOLVED', 'ESCALATED', 'MOVED', 'PRIORITY_CHANGED', 'CANCELLED', 'COMMENTED', 'SUSPENDED', 'RESUMED', 'MIGRATED'])), name='task_event_type_valid'),
        ),
    ]
