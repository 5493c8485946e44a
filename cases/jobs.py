"""Celery jobs of cases, run by beat or queued by the console: thin wrappers over services, retried on transient
database errors (core/jobs.py)."""

from __future__ import annotations

from celery import shared_task

from core import encryption
from core.jobs import JOB_OPTIONS
from entitlements.row_scope import system_scope

from .models import RetentionAction
from .privacy.erasure import person_erase
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


# --- erasure asked for in the supervisor console ------------------------------------------------------------------

ERASURE_KINDS = ("user", "case_subjects")


def erasure_queue(*, kind: str, target_ids: list[int], reason: str, erased_by, remote_addr=None, path="") -> str:
    """Queue one erasure (one person) for the maintenance worker; its Celery task id.

    An erasure rewrites history, which only the maintenance database role may (core/db_roles.py); the web logs in
    as workflow_app and cannot take that role, the Celery worker logs in as workflow_maintenance. The reason travels
    sealed (core/encryption.py): a job's arguments are kept with its result, and the reason may name the person.
    Raises kombu's OperationalError when the broker does not answer (nothing is queued then).
    """
    if kind not in ERASURE_KINDS:
        raise ValueError(f"unknown erasure kind {kind!r}")
    queued = erase_person.apply_async(
        kwargs={
            "kind": kind,
            "target_ids": list(target_ids),
            "sealed_reason": encryption.seal(reason),
            "erased_by_id": erased_by.pk if erased_by is not None else None,
            "remote_addr": remote_addr,
            "path": path,
        },
        retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
    )
    return queued.id


@shared_task(name="cases.erase_person", **JOB_OPTIONS)
def erase_person(
    *, kind: str, target_ids: list[int], sealed_reason: str, erased_by_id: int | None, remote_addr=None, path=""
) -> dict:
    """One queued erasure (erasure_queue). Its result names no one: erased or refused, the pseudonym, the security
    event that records it. A refusal (the user took a task meanwhile, say) is the result, not a retry."""
    try:
        reason = encryption.open_sealed(sealed_reason)
    except encryption.UnreadableValue as exc:
        return {"erased": False, "code": "reason_unreadable", "detail": exc.detail}
    with system_scope():  # the system's work, over every case the person appears in
        return person_erase(
            kind=kind,
            target_ids=target_ids,
            reason=reason,
            erased_by_id=erased_by_id,
            remote_addr=remote_addr,
            path=path,
        )
