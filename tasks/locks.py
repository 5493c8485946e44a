"""The one order every service locks rows in: process instance, then task, then queue.

    workflow definition   deploy serialises the versions of one process key; holds nothing else
    decision definition   deploy serialises the versions of its decision keys; holds nothing else
    process instance      completion, timers, suspend/resume/cancel, incident retry; then its incidents
    task                  one or many, in task_id order in one statement
    notification          marking one read (the recipient's own row; taken with nothing else held)
    queue                 queues/locks.py; every queue a service changes, in queue_id order in one statement
    case routing history  cases/locks.py; cases append a hop after the task has moved

A transaction that has waited for a lock further down this list never waits for one further up, so two
transactions can wait for each other only in one direction: no deadlock. Locks taken with SKIP LOCKED never wait
and may come at any point (the SLA sweep and rebalancing lock their queues first and then pass over busy tasks;
claim-next, in flowable.claim_next_task, and archival's batches do the same in SQL, the statements that cannot be
querysets). Locks on entitlements' rows are taken only by entitlement services, which hold no other
(entitlements/locks.py).

Implicit row locks count too: an UPDATE of a queue's current_load locks that queue row, so a service locks its
tasks before it changes a queue's load.
"""

from __future__ import annotations

from django.db.models import QuerySet

from core.locks import rows_for_update
from queues.locks import queues_for_update, queues_lock

from .models import DecisionDefinition, ProcessIncident, ProcessInstance, WorkflowDefinition, WorkflowTask

__all__ = [
    "decisions_for_update",
    "definitions_for_update",
    "notifications_for_update",
    "process_instances_for_update",
    "incidents_for_update",
    "tasks_for_update",
    "queues_for_update",
    "queues_lock",
    "task_queues_lock",
]


def definitions_for_update() -> QuerySet:
    return rows_for_update(WorkflowDefinition.objects.all())


def decisions_for_update() -> QuerySet:
    return rows_for_update(DecisionDefinition.objects.all())


def notifications_for_update(queryset: QuerySet) -> QuerySet:
    """A user's notifications (`queryset`, already narrowed to theirs) locked when read."""
    return rows_for_update(queryset)


def process_instances_for_update(queryset: QuerySet | None = None, *, skip_locked: bool = False) -> QuerySet:
    """Process instances (all, or those of `queryset`) locked when read: the first lock of any service."""
    return rows_for_update(ProcessInstance.objects.all() if queryset is None else queryset, skip_locked=skip_locked)


def incidents_for_update() -> QuerySet:
    """Incidents, locked after their process instance."""
    return rows_for_update(ProcessIncident.objects.all())


def tasks_for_update(queryset: QuerySet | None = None, *, skip_locked: bool = False) -> QuerySet:
    """Tasks (all, or those of `queryset`) locked when read, after their process instance and before any queue."""
    return rows_for_update(WorkflowTask.objects.all() if queryset is None else queryset, skip_locked=skip_locked)


def task_queues_lock(tasks) -> dict:
    """Lock the queues of `tasks` (already locked) in one statement, before their loads change."""
    return queues_lock(queue_names=[task.queue_id for task in tasks])
