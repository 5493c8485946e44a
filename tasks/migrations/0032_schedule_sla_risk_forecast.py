"""Schedule the SLA-risk forecast (tasks/jobs.py: forecast_sla_risk) every five minutes, as 0008 schedules the
other jobs (django-celery-beat's database scheduler; editable in admin), and seed its alert rule (editable in admin,
as the rules 0009 seeds)."""

from django.db import migrations

NAME = "SLA risk forecast"
TASK = "workflow.forecast_sla_risk"


def create_schedule(apps, schema_editor):
    interval, _ = apps.get_model("django_celery_beat", "IntervalSchedule").objects.get_or_create(
        every=5, period="minutes"
    )
    apps.get_model("django_celery_beat", "PeriodicTask").objects.get_or_create(
        name=NAME, defaults={"task": TASK, "interval": interval}
    )


    apps.get_model("tasks", "AlertRule").objects.get_or_create(
        kind="SLA_RISK",
        defaults={
            "description": "A task not yet due is forecast to miss its due date (breach probability at least "
            "SLA_RISK_THRESHOLD; once per task and due date).",
            "severity": "warning",
            "threshold_percent": None,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()
    apps.get_model("tasks", "AlertRule").objects.filter(kind="SLA_RISK").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0031_task_risks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_schedule, remove_schedule)]
