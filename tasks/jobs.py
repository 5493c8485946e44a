"""Celery jobs run by beat: thin wrappers over services, retried on transient database errors (core/jobs.py).

Each job returns a small dict (what it touched); with django-celery-results it is stored, with its start,
end and any error, and shown in admin (Celery Results → Task results). Each runs in the system row scope: it works
on every queue's rows for nobody in particular (docs/row-level-security.md). Alert delivery, which the alerts it
raises enqueue, is tasks/sla/alerts.py: deliver_alert.
"""

from __future__ import annotations

from celery import shared_task

from core.jobs import JOB_OPTIONS, TRANSIENT
from entitlements.models import User
from entitlements.row_scope import system_scope

from .bpmn.workflows import process_fire_due_timers
from .console.summaries import PERIODS, summary_recipients, summary_send
from .external.handlers import external_task_handler_run, external_task_handlers_dispatch
from .forecast.services import task_risks_refresh
from .forecast.whatif_services import JOB_NAME as WHATIF_JOB_NAME
from .forecast.whatif_services import whatif_run_execute
from .history_partitioning import task_history_partitions_ensure
from .notifications import notifications_purge
from .services import rebalance_queue_loads
from .sla.aging import task_priorities_age
from .sla.alerts import DELIVERY_BACKOFF_SECONDS, DELIVERY_ERRORS, capacity_alerts_raise, sla_risk_alerts_raise
from .sla.archive import completed_tasks_archive
from .sla.escalation import escalate_overdue_tasks
from .sla.maintenance import refresh_dashboards as dashboards_refresh
from .sla.maintenance import update_queue_statistics


@shared_task(name="workflow.sla_check", **JOB_OPTIONS)
def sla_check() -> dict:
    with system_scope():
        outcomes = escalate_overdue_tasks()
        return {"escalated": sum(o.tasks for o in outcomes), "levels": [[o.queue, o.level, o.tasks] for o in outcomes]}


@shared_task(name="workflow.fire_timers", **JOB_OPTIONS)
def fire_timers() -> dict:
    with system_scope():
        return {"instances": process_fire_due_timers()}


@shared_task(name="workflow.queue_statistics", **JOB_OPTIONS)
def queue_statistics() -> dict:
    with system_scope():
        return {"queues": len(update_queue_statistics())}


@shared_task(name="workflow.refresh_dashboards", **JOB_OPTIONS)
def refresh_dashboards() -> dict:
    with system_scope():
        return {"views": dashboards_refresh()}


@shared_task(name="workflow.rebalance_queues", **JOB_OPTIONS)
def rebalance_queues() -> dict:
    with system_scope():
        moves = rebalance_queue_loads()
        return {"moved": sum(m["tasks"] for m in moves), "moves": moves}


@shared_task(name="workflow.archive_completed_tasks", **JOB_OPTIONS)
def archive_completed_tasks(days: int = 90) -> dict:
    with system_scope():
        result = completed_tasks_archive(older_than_days=days)
        return {
            "tasks": result.tasks,
            "history": result.history,
            "batches": result.batches,
            "left_locked": result.left_locked,
        }


@shared_task(name="workflow.ensure_task_history_partitions", **JOB_OPTIONS)
def ensure_task_history_partitions() -> dict:
    """Daily: the task history's month partitions up to next month (migration 0026 schedules it)."""
    return {"created": task_history_partitions_ensure()}


@shared_task(name="workflow.capacity_monitor", **JOB_OPTIONS)
def capacity_monitor() -> dict:
    with system_scope():
        return {"alerts": capacity_alerts_raise()}


@shared_task(name="workflow.forecast_sla_risk", **JOB_OPTIONS)
def forecast_sla_risk() -> dict:
    """Every few minutes (migration 0032 schedules it): every active task's SLA-risk forecast (tasks/forecast/),
    then the aging boosts of queues that age their tasks, from those fresh forecasts (tasks/sla/aging.py)."""
    with system_scope():
        refresh = task_risks_refresh()
        alerts = sla_risk_alerts_raise()
        aging = task_priorities_age()
        return {
            "queues": refresh.queues,
            "tasks": refresh.tasks,
            "at_risk": refresh.at_risk,
            "alerts": alerts,
            "boosts_changed": aging.changed,
        }


@shared_task(name=WHATIF_JOB_NAME, **JOB_OPTIONS)
def run_staffing_whatif(run_id: int) -> dict:
    """Sent when a supervisor asks for a staffing what-if (tasks/forecast/whatif_services.py); progress and result
    go on the run's row, which the console page polls."""
    with system_scope():
        run = whatif_run_execute(run_id=run_id)
        return {"run": run_id, "status": run.status if run else None}


@shared_task(name="workflow.dispatch_external_task_handlers", **JOB_OPTIONS)
def dispatch_external_task_handlers() -> dict:
    """Every few seconds, and after a new item of a handled topic commits: lock items for the Python handlers."""
    return {"dispatched": external_task_handlers_dispatch()}


@shared_task(name="workflow.run_external_task_handler", **JOB_OPTIONS)
def run_external_task_handler(**item) -> dict:
    return {"external_task_id": item["external_task_id"], "outcome": external_task_handler_run(**item)}


@shared_task(name="workflow.purge_notifications", **JOB_OPTIONS)
def purge_notifications() -> dict:
    """Daily: in-app notifications are short-lived (settings NOTIFICATIONS_KEEP_READ_DAYS, NOTIFICATIONS_KEEP_DAYS)."""
    return {"deleted": notifications_purge()}


@shared_task(name="workflow.send_summaries", **JOB_OPTIONS)
def send_summaries(period: str) -> dict:
    """Beat, daily and weekly: one send job per supervisor (tasks/console/summaries.py), so a failed send is retried
    alone and a slow mail server holds up no other job."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    recipients = [user.pk for user in summary_recipients()]
    for user_id in recipients:
        send_summary.delay(user_id, period)
    return {"period": period, "queued": len(recipients)}


SEND_JOB_OPTIONS = {
    **JOB_OPTIONS,
    "autoretry_for": TRANSIENT + DELIVERY_ERRORS,
    "retry_backoff": DELIVERY_BACKOFF_SECONDS,
}


@shared_task(name="workflow.send_summary", **SEND_JOB_OPTIONS)
def send_summary(user_id: int, period: str) -> dict:
    """One supervisor's summary email, sent outside any transaction; retried with backoff on a failed send."""
    with system_scope():
        user = User.objects.filter(pk=user_id).first()
    sent = user is not None and summary_send(user=user, period=period)
    return {"user": user_id, "period": period, "sent": sent}
