"""The Celery app; configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_project.settings")

app = Celery("workflow_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.imports = ("tasks.jobs", "entitlements.jobs", "cases.jobs")
