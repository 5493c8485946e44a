"""flowable.task_history partitioned by month of created_at (tasks/history_partitioning.py).

A history of up to {MIGRATE_IN_PLACE_MAX_ROWS} rows (every new installation) is moved here, in this migration's
transaction. A larger one stays one table, and `manage.py partition_task_history` moves it online, in batches, while
claims go on (README, "Partitioned history"); the model is the same either way. Reversing this migration turns the
table back into one.

The month partitions ahead come from flowable.ensure_task_history_partitions, run daily by the beat job scheduled
here; it creates nothing while the table is not partitioned.
"""

from django.db import migrations

from tasks.history_partitioning import (
    MIGRATE_IN_PLACE_MAX_ROWS,
    task_history_partition_in_place,
    task_history_unpartition,
)

ENSURE = """
-- flowable.ensure_task_history_partitions: the month partitions of flowable.task_history (UTC months, by
-- created_at) from this month to p_months_ahead months ahead, created where missing
-- (entitlements.month_partitions_ensure); returns the names of those it created. The daily beat job and
-- `manage.py partition_task_history --ensure` call it; it creates nothing while the table is still one table
-- (an upgraded installation before `manage.py partition_task_history`).
--
-- SECURITY DEFINER: it runs as its owner, because the application role that calls it holds no DDL rights;
-- search_path is pinned and EXECUTE is granted to the application role only (core/db_roles.py). It creates
-- partitions of this one table, for at most 25 months from now.
CREATE OR REPLACE FUNCTION flowable.ensure_task_history_partitions(p_months_ahead integer DEFAULT 1)
 RETURNS SETOF text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'flowable', 'pg_temp'
 SET lock_timeout TO '5s'
AS $function$
BEGIN
    RETURN QUERY SELECT entitlements.month_partitions_ensure('flowable.task_history', p_months_ahead);
END
$function$;
"""

JOB_NAME = "Task history partitions"
JOB_TASK = "workflow.ensure_task_history_partitions"
JOB_CRONTAB = {"minute": "15", "hour": "0", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}


def partition(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if not task_history_partition_in_place(cursor):
            print(
                f"\n  flowable.task_history holds more than {MIGRATE_IN_PLACE_MAX_ROWS} rows: it stays one table until "
                "`manage.py partition_task_history` moves it online."
            )


def unpartition(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        task_history_unpartition(cursor)


def create_schedule(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = crontab_model.objects.get_or_create(**JOB_CRONTAB)
    task_model.objects.get_or_create(name=JOB_NAME, defaults={"task": JOB_TASK, "crontab": crontab})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=JOB_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0025_row_level_security"),
        ("entitlements", "0017_month_partitions_ensure"),
        ("cases", "0009_sealed_titles_and_hop_reasons"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunSQL(
            ENSURE, reverse_sql="DROP FUNCTION IF EXISTS flowable.ensure_task_history_partitions(integer);"
        ),
        migrations.RunPython(partition, unpartition),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
