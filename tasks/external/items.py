"""External task rows as the engine opens and closes them, their history, and handing an item back to the pool.

Imports no engine code: tasks/bpmn/workflows.py calls external_tasks_sync after each engine step it stores.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.locks import rows_for_update

from ..models import (
    ExternalTask,
    ExternalTaskEventType,
    ExternalTaskHistory,
    ExternalTaskStatus,
    ProcessIncident,
)
from .registry import DISPATCH_TASK, registered_handlers


def dispatch_after_commit(topic_names: set[str]) -> None:
    """After the commit, send the handlers' dispatch job (tasks/external/handlers.py) if a topic has a handler."""
    if topic_names & set(registered_handlers()):
        from celery import current_app

        transaction.on_commit(lambda: current_app.send_task(DISPATCH_TASK))


def external_tasks_for_update(queryset: QuerySet | None = None) -> QuerySet:
    """External tasks locked when read: after their process instance, as a task (tasks/locks.py)."""
    return rows_for_update(ExternalTask.objects.all() if queryset is None else queryset)


def history_append(item: ExternalTask, event_type: str, *, user, worker_id: str = "", **values) -> None:
    ExternalTaskHistory.objects.create(
        external_task=item,
        event_type=event_type,
        actor=user,
        worker_id=worker_id or "",
        new_values=values,
    )


def external_tasks_sync(instance, run, *, user) -> list[ExternalTask]:
    """Create the external tasks the engine opened in `run` and cancel the ones it closed (the caller has locked
    the instance and runs in the system scope). Returns the created items."""
    opened = set(run.opened_task_ids)
    created = [
        ExternalTask(
            process_instance=instance,
            engine_task_id=ready.engine_task_id,
            activity_id=ready.activity_id,
            name=ready.name,
            topic_name=ready.topic_name,
            priority=ready.priority,
        )
        for ready in run.ready_external_tasks
        if ready.engine_task_id in opened
    ]
    if created:
        ExternalTask.objects.bulk_create(created)
        dispatch_after_commit({item.topic_name for item in created})
        ExternalTaskHistory.objects.bulk_create(
            ExternalTaskHistory(external_task=item, event_type=ExternalTaskEventType.CREATED, actor=user, new_values={})
            for item in created
        )
    if run.closed_task_ids:
        closing = list(
            external_tasks_for_update(
                ExternalTask.objects.filter(
                    process_instance=instance,
                    engine_task_id__in=run.closed_task_ids,
                    status=ExternalTaskStatus.ACTIVE,
                )
            )
        )
        for item in closing:
            item.status = ExternalTaskStatus.CANCELLED
            item.lock_expires_at = None
            item.save(update_fields=["status", "lock_expires_at", "updated_at"])
            history_append(item, ExternalTaskEventType.CANCELLED, user=user, reason="closed by the workflow")
        ProcessIncident.objects.filter(external_task__in=closing, resolved_at__isnull=True).update(
            resolved_at=timezone.now()
        )
    return created


def return_to_pool(item: ExternalTask, *, retries: int, user) -> None:
    """Give a (locked) item `retries` and hand it back to the pool now: no lock, no retry wait; its open incident
    is resolved."""
    old = item.retries
    item.retries = retries
    item.retry_at = None
    item.lock_expires_at = None
    item.worker_id = ""
    item.save(update_fields=["retries", "retry_at", "lock_expires_at", "worker_id", "updated_at"])
    history_append(item, ExternalTaskEventType.RETRIES_SET, user=user, old_retries=old, retries=retries)
    ProcessIncident.objects.filter(external_task=item, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by=user
    )
