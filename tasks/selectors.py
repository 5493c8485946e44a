"""Reads of tasks that views, the API and admin share. Every one checks access first."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Min, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.errors import NotFound
from core.replica import replica_reads
from entitlements.access import capabilities_by_queue, queue_names_for, queues_for
from entitlements.models import Capability
from entitlements.row_scope import exists_in_any_scope

from .locks import tasks_for_update
from .models import ArchivedTask, ArchivedTaskHistory, ProcessInstance, TaskHistory, WorkflowTask


def tasks_visible_to(*, user, capability: str = Capability.VIEW) -> QuerySet:
    """Tasks in the queues where `user` holds `capability` now: a subquery over permitted queues."""
    return WorkflowTask.objects.filter(queue_id__in=queues_for(user=user, capability=capability).values("queue_name"))


def tasks_listed_for(*, user) -> QuerySet:
    """The tasks of `tasks_visible_to`, for lists that sort and page: the queue names are read first (one small
    query) and given as literals.

    From literals PostgreSQL knows how many tasks the queues hold and plans for it: a sequential scan and a top-N
    sort when they hold most of the table, an index when they hold few. Behind the access rule's subquery it
    guessed a few, and read a million tasks through an index in random order (1M tasks: 3 s, against 0.5 s).
    """
    return WorkflowTask.objects.filter(queue_id__in=queue_names_for(user=user, capability=Capability.VIEW))


def task_for_user(*, user, task_id: int, capability: str = Capability.VIEW, for_update: bool = False) -> WorkflowTask:
    """Fetch a task and check the user may reach it, in one call. Outside their queues it does not exist (NotFound)."""
    queryset = tasks_visible_to(user=user, capability=capability)
    # A locking read joins nothing it would also lock (tasks/locks.py).
    queryset = tasks_for_update(queryset) if for_update else queryset.select_related("queue", "assignee", "owner")
    task = queryset.filter(pk=task_id).first()
    if task is None:
        error = NotFound(f"task {task_id} not found", code="task_not_found")
        if exists_in_any_scope(WorkflowTask.objects.filter(pk=task_id)):
            # Audited by the caller's error handler, after this transaction has rolled back.
            error.denial = {"task_id": task_id, "capability": str(capability)}
        raise error
    return task


def task_or_archived_for_user(*, user, task_id: int) -> WorkflowTask | ArchivedTask:
    """A task as task_for_user finds it, or else as it was archived (read-only), under the same queue check."""
    try:
        return task_for_user(user=user, task_id=task_id)
    except NotFound as live_error:
        visible = ArchivedTask.objects.filter(
            queue_id__in=queues_for(user=user, capability=Capability.VIEW).values("queue_name")
        )
        archived = visible.select_related("assignee", "owner").filter(pk=task_id).first()
        if archived is not None:
            return archived
        if not live_error.denial and exists_in_any_scope(ArchivedTask.objects.filter(pk=task_id)):
            live_error.denial = {"task_id": task_id, "capability": str(Capability.VIEW), "archived": True}
        raise


def task_history_of(*, task: WorkflowTask | ArchivedTask) -> QuerySet:
    """The task's events in order (from the archive once the task has been archived), for a task the caller
    fetched through task_or_archived_for_user, which checked access."""
    if isinstance(task, ArchivedTask):
        events = ArchivedTaskHistory.objects.filter(task_id=task.task_id)
    else:
        events = TaskHistory.objects.filter(task=task)
    return events.select_related("actor", "via_account").order_by("created_at", "event_id")


def task_business_key(*, task: WorkflowTask | ArchivedTask):
    """The business key of the task's process instance (for a case's workflow, the case number), for the access
    audit's row: an expression its INSERT evaluates (a subquery by primary key), so it costs no query of its own."""
    if not task.process_instance_id:
        return ""
    keys = ProcessInstance.objects.filter(pk=task.process_instance_id).values("business_key")[:1]
    return Coalesce(Subquery(keys), Value(""))


def tasks_for_inbox(*, user) -> QuerySet:
    """The user's claimed tasks, overdue first, then by due date and priority."""
    from django.db.models import F

    return (
        tasks_visible_to(user=user, capability=Capability.VIEW)
        .filter(assignee=user, status="CLAIMED")
        .select_related("queue", "process_instance")
        .order_by(F("due_date").asc(nulls_last=True), "-priority", "created_at")
    )


DUE_SOON = timedelta(hours=24)


@replica_reads
def queue_dashboard(*, user) -> list:
    """Queues the user may view with their task counts and SLA figures (two queries whatever the number of queues),
    on the read replica when one serves (core/replica.py)."""
    now = timezone.now()
    queues = list(queues_for(user=user, capability=Capability.VIEW).select_related("department").order_by("queue_name"))
    active = Q(status__in=["OPEN", "CLAIMED"])
    figures = {
        row["queue_id"]: row
        for row in WorkflowTask.objects.filter(queue_id__in=[q.queue_name for q in queues])
        .filter(Q(status__in=["OPEN", "CLAIMED", "ESCALATED"]))
        .order_by()
        .values("queue_id")
        .annotate(
            open_count=Count("pk", filter=Q(status="OPEN")),
            claimed_count=Count("pk", filter=Q(status="CLAIMED")),
            escalated_count=Count("pk", filter=Q(status="ESCALATED") | (active & Q(escalation_level__gt=0))),
            overdue_count=Count("pk", filter=active & Q(due_date__lt=now)),
            due_soon_count=Count("pk", filter=active & Q(due_date__gte=now, due_date__lt=now + DUE_SOON)),
            oldest_open=Min("created_at", filter=Q(status="OPEN")),
        )
    }
    capabilities = capabilities_by_queue(user=user)
    for queue in queues:
        row = figures.get(queue.queue_name, {})
        for name in ("open_count", "claimed_count", "escalated_count", "overdue_count", "due_soon_count"):
            setattr(queue, name, row.get(name, 0))
        oldest = row.get("oldest_open")
        queue.oldest_open_age_seconds = (now - oldest).total_seconds() if oldest else None
        queue.capabilities = capabilities.get(queue.queue_name, [])
    return queues
