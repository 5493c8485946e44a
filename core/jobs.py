"""How Celery jobs retry: on transient database errors, with exponential backoff, keeping their result."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

TRANSIENT = (OperationalError, InterfaceError)
JOB_OPTIONS = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 5,
    "ignore_result": False,
    "acks_late": True,
}
