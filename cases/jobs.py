"""Celery jobs of cases run by beat: thin wrappers over services, retried on transient database errors (core/jobs.py)."""

from __future__ import annotations

from celery import shared_task

from core.jobs import JOB_OPTIONS
from entitlements.row_scope import system_scope

from .models import RetentionAction
from .privacy.retention import retention_apply


@shared_task(name="cases.apply_retention", **JOB_OPTIONS)
def apply_retention() -> dict:
    """Schedule "Apply retention policies" (migration cases 0006). Counts only: the stored result names no case."""
    with system_scope():  # the system's work, over every closed case
        result = retention_apply()
    return {
        "redacted": result.count(RetentionAction.REDACT),
        "deleted": result.count(RetentionAction.DELETE),
        "batches": result.batches,
        "left_locked": result.left_locked,
    }
