"""Gunicorn settings shared by bin/run and bench/claim.py (`-c python:workflow_project.gunicorn_config`)."""

import gc


def post_worker_init(worker):
    """Load the URLconf and everything it imports, then hide those long-lived objects from the cyclic collector.

    Otherwise every full collection in a busy worker walks Django's, DRF's and the app's module graph again,
    which shows as a latency tail under load (Instagram's gc.freeze() technique).
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module
    gc.collect()
    gc.freeze()
