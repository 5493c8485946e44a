"""An index for the SLA-risk job's per-queue sweep of stale forecasts (tasks/forecast/services.py: STALE_SQL)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0042_process_waits_default_empty"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="taskrisk",
            index=models.Index(fields=["queue_name", "task"], name="idx_task_risks_queue"),
        ),
    ]
