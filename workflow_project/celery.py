"""The Celery app; configuration comes from Django settings (CELERY_* names)."""

import gc
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_project.settings")

app = Celery("workflow_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.imports = ("tasks.jobs", "entitlements.jobs", "cases.jobs")


@worker_ready.connect
def freeze_loaded_objects(**kwargs):
    """Hide the objects loaded at start (Django, the apps, the engine) from the cyclic collector, as gunicorn's
    post_worker_init does for the web (workflow_project/gunicorn_config.py).

    The worker's last collection at exit otherwise walks all of them again: seconds of a warm shutdown on a busy
    machine, beyond the time bin/run gives the worker before killing it. Pool processes forked later share the
    frozen objects' pages instead of copying them when the collector touches them.
    """
    gc.collect()
    gc.freeze()
