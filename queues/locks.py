"""Locks on queue rows: the last of the lock order process instance → task → queue (tasks/locks.py).

A service that changes several queues (loads, an overflow target) locks them all in one read, in primary-key
order, before it changes any, so two such services queue behind each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from core.locks import rows_for_update

from .models import WorkflowQueue


def queues_for_update(queryset: QuerySet | None = None) -> QuerySet:
    """Queues (all, or those of `queryset`) locked when read, in primary-key order."""
    return rows_for_update(WorkflowQueue.objects.all() if queryset is None else queryset)


def queues_lock(*, queue_ids: Iterable[int] = (), queue_names: Iterable[str] = ()) -> dict[int, WorkflowQueue]:
    """Lock the queues named by id or by name in one statement; the locked rows by id."""
    ids, names = {i for i in queue_ids if i is not None}, {n for n in queue_names if n is not None}
    if not ids and not names:
        return {}
    queues = WorkflowQueue.objects.filter(Q(pk__in=ids) | Q(queue_name__in=names))
    return {queue.pk: queue for queue in queues_for_update(queues)}
