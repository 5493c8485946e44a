"""Celery jobs of entitlements run by beat: thin wrappers over services (retries as in core/jobs.py)."""

from __future__ import annotations

from celery import shared_task

from core.jobs import JOB_OPTIONS

from .services import access_audit_partitions_ensure


@shared_task(name="entitlements.ensure_access_audit_partitions", **JOB_OPTIONS)
def ensure_access_audit_partitions() -> dict:
    """Daily: the access audit's month partitions up to two months ahead (migration 0011 schedules it)."""
    return {"created": access_audit_partitions_ensure()}
