"""Task list by queue, newest first, walks an index of active tasks; the duplicate process-instance index goes.

Django drops an index by its bare name, which misses an index in the `flowable` schema, so both index changes
are written out with the schema (the state changes stay Django's) and the migration reverses cleanly. idx_workflow_tasks_instance
(process_instance_id, status) serves every lookup the dropped one did, and every non-HOT update of a task (each
claim, release and completion) wrote an entry into both.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0010_completed_index_covering'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS flowable.workflow_tasks_process_instance_id_39191e5e",
                    reverse_sql="CREATE INDEX IF NOT EXISTS workflow_tasks_process_instance_id_39191e5e "
                                "ON flowable.workflow_tasks (process_instance_id)",
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='workflowtask',
                    name='process_instance',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='tasks', to='tasks.processinstance'),
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "CREATE INDEX idx_workflow_tasks_queue_active ON flowable.workflow_tasks (queue_name, task_id DESC) "
                    "WHERE status IN ('OPEN', 'CLAIMED')",
                    reverse_sql="DROP INDEX IF EXISTS flowable.idx_workflow_tasks_queue_active",
                ),
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name='workflowtask',
                    index=models.Index(models.F('queue'), models.OrderBy(models.F('task_id'), descending=True), condition=models.Q(('status__in', ['OPEN', 'CLAIMED'])), name='idx_workflow_tasks_queue_active'),
                ),
            ],
        ),
    ]
