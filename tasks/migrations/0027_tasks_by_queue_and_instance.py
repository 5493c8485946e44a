"""Tasks by queue and process instance: the case list reads a small scope from its matches (cases 0010), the process
instances with a task in the caller's queues, from this index alone, without visiting the task rows.

Built CONCURRENTLY (so the migration is not atomic): a plain CREATE INDEX on a large task table would block every
claim and completion for as long as the build takes. Django's schema editor cannot find or drop indexes of a
schema-qualified table by name, so the database side is written out; the state is Django's.
"""

from django.db import migrations, models

INDEX = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_queue_instance ON flowable.workflow_tasks "
    "(queue_name, process_instance_id)"
)
INDEX_REVERSE = "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_queue_instance"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tasks", "0026_task_history_partitioned"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="workflowtask",
                    index=models.Index(fields=["queue", "process_instance"], name="idx_workflow_tasks_queue_instance"),
                ),
            ],
            database_operations=[migrations.RunSQL(INDEX, reverse_sql=INDEX_REVERSE)],
        ),
    ]
