"""Beat runs the external task handlers' dispatch every few seconds (tasks/external/handlers.py); a new item of a
handled topic also sends it at once. Editable in admin (Periodic tasks)."""

from django.db import migrations

JOB_NAME = "Dispatch external tasks to their Python handlers"
JOB_TASK = "workflow.dispatch_external_task_handlers"
EVERY_SECONDS = 10


def create_schedule(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = interval_model.objects.get_or_create(every=EVERY_SECONDS, period="seconds")
    task_model.objects.get_or_create(name=JOB_NAME, defaults={"task": JOB_TASK, "interval": interval})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=JOB_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0034_external_tasks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
