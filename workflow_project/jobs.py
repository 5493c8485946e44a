"""Celery jobs run by beat: thin wrappers over services, retried on transient database errors.

Each job returns a small dict (what it touched); with django-celery-results it is stored, with its start,
end and any error, and shown in admin (Celery Results → Task results).
"""
from __future__ import annotations

from celery import shared_task
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


@shared_task(name="workflow.sla_check", **JOB_OPTIONS)
def sla_check() -> dict:
    from tasks.sla import escalate_overdue_tasks

    outcomes = escalate_overdue_tasks()
    return {"escalated": sum(o.tasks for o in outcomes), "levels": [[o.queue, o.level, o.tasks] for o in outcomes]}


@shared_task(name="workflow.fire_timers", **JOB_OPTIONS)
def fire_timers() -> dict:
    from tasks.workflows import process_fire_due_timers

    return {"instances": process_fire_due_timers()}


@shared_task(name="workflow.queue_statistics", **JOB_OPTIONS)
def queue_statistics() -> dict:
    from tasks.maintenance import update_queue_statistics

    return {"queues": len(update_queue_statistics())}


@shared_task(name="workflow.refresh_dashboards", **JOB_OPTIONS)
def refresh_dashboards() -> dict:
    from tasks.maintenance import refresh_dashboards as refresh

    return {"views": refresh()}


@shared_task(name="workflow.rebalance_queues", **JOB_OPTIONS)
def rebalance_queues() -> dict:
    from tasks.services import rebalance_queue_loads

    moves = rebalance_queue_loads()
    return {"moved": sum(m["tasks"] for m in moves), "moves": moves}
