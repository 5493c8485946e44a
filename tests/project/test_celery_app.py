"""The Celery app's own hooks."""

import gc

from celery.signals import worker_ready


def test_a_ready_worker_freezes_the_loaded_application():
    try:
        worker_ready.send(sender=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
