"""Celery jobs run by beat: thin wrappers over services, retried on transient database errors.

Each job returns a small dict (what it touched); with django-celery-results it is stored, with its start,
end and any error, and shown in admin (Celery Results → Task results).
"""
from __future__ import annotations

from http.client import HTTPException

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


@shared_task(name="workflow.archive_completed_tasks", **JOB_OPTIONS)
def archive_completed_tasks(days: int = 90) -> dict:
    from tasks.archive import completed_tasks_archive

    result = completed_tasks_archive(older_than_days=days)
    return {"tasks": result.tasks, "history": result.history, "batches": result.batches, "left_locked": result.left_locked}


@shared_task(name="workflow.capacity_monitor", **JOB_OPTIONS)
def capacity_monitor() -> dict:
    from tasks.alerts import capacity_alerts_raise

    return {"alerts": capacity_alerts_raise()}


# Alert delivery retries on failed sends too (URLError/HTTPError, timeouts, refused connections and SMTPException
# are OSErrors; a garbled HTTP answer is an HTTPException), backing off 5 s, 10 s, 20 s … up to 5 minutes.
ALERT_DELIVERY_ERRORS = (OSError, HTTPException)
ALERT_DELIVERY_BACKOFF_SECONDS = 5
ALERT_DELIVERY_OPTIONS = {
    **JOB_OPTIONS,
    "autoretry_for": TRANSIENT + ALERT_DELIVERY_ERRORS,
    "retry_backoff": ALERT_DELIVERY_BACKOFF_SECONDS,
}


@shared_task(name="workflow.deliver_alert", bind=True, **ALERT_DELIVERY_OPTIONS)
def deliver_alert(self, delivery_id: int) -> dict:
    from tasks.alerts import alert_deliver

    status = alert_deliver(delivery_id=delivery_id, final=self.request.retries >= self.max_retries)
    return {"delivery": delivery_id, "status": status, "attempt": self.request.retries + 1}
