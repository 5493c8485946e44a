"""The tasks app's row-level security functions are planned once per session, not once per row, as the cases app's
(cases 0011 says why). Added to the functions as defined (tasks/sql/*.sql hold their current text); backwards,
removed."""

from django.db import migrations

FUNCTIONS = (
    "flowable.archived_task_in_acting_queues(bigint)",
    "flowable.process_instance_in_acting_queues(bigint)",
    "flowable.task_in_acting_queues(bigint)",
    "flowable.task_reached_by_acting_queues(bigint)",
)


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0050_archive_partitions_granted"),
    ]

    operations = [
        migrations.RunSQL(
            [f"ALTER FUNCTION {function} SET plan_cache_mode = force_generic_plan" for function in FUNCTIONS],
            reverse_sql=[f"ALTER FUNCTION {function} RESET plan_cache_mode" for function in FUNCTIONS],
        ),
    ]
