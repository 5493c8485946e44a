"""Reads of tasks that views, the API and admin share. Every one checks access first."""

from __future__ import annotations

from django.db import connections
from django.db.models import QuerySet, Subquery, Value
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


def task_list_queue_names(*, user) -> list[str]:
    """The names of the queues whose tasks `user` may list now (one small query)."""
    return queue_names_for(user=user, capability=Capability.VIEW)


def task_list_and_workable_queue_names(*, user) -> tuple[list[str], set[str]]:
    """task_list_queue_names, and those of them where `user` may work (claim), in one query."""
    held = capabilities_by_queue(user=user, capabilities=(Capability.VIEW, Capability.WORK))
    viewable = [name for name, capabilities in held.items() if Capability.VIEW in capabilities]
    return viewable, {name for name, capabilities in held.items() if Capability.WORK in capabilities}


def tasks_listed_for(*, user, queue_names: list[str] | None = None) -> QuerySet:
    """The tasks of `tasks_visible_to`, for lists that page: the queue names (`task_list_queue_names`, read here
    unless the caller already holds them) are given as literals.

    From literals PostgreSQL knows how many tasks the queues hold and plans for it; behind the access rule's
    subquery it guessed a few. The lists' probes (core/pagination.py) take one queue at a time from these names.
    """
    if queue_names is None:
        queue_names = task_list_queue_names(user=user)
    return WorkflowTask.objects.filter(queue_id__in=queue_names)


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


# The routing endpoint shows a task's latest decisions, a bounded list however often it changed hands.
ROUTING_DECISIONS_SHOWN = 20


def task_routing_of(*, task: WorkflowTask | ArchivedTask) -> list:
    """The task's history events that record a routing decision, oldest first (the latest
    ROUTING_DECISIONS_SHOWN), for a task the caller fetched through task_or_archived_for_user, which checked access."""
    events = task_history_of(task=task).filter(routing__isnull=False).order_by("-created_at", "-event_id")
    return list(events[:ROUTING_DECISIONS_SHOWN])[::-1]


def task_business_key(*, task: WorkflowTask | ArchivedTask):
    """The business key of the task's process instance (for a case's workflow, the case number), for the access
    audit's row: an expression its INSERT evaluates (a subquery by primary key), so it costs no query of its own."""
    if not task.process_instance_id:
        return ""
    keys = ProcessInstance.objects.filter(pk=task.process_instance_id).values("business_key")[:1]
    return Coalesce(Subquery(keys), Value(""))


# What a list page (the inbox, the queue page) leaves in the database: each row shows its task's name, queue,
# priority, due date and its process's business key, never the JSON documents (the instance's engine state is the
# whole serialised workflow, tens of kilobytes each).
LIST_PAGE_DEFERRED = ("variables", "form_fields", "process_instance__engine_state", "process_instance__variables")


def tasks_for_inbox(*, user) -> QuerySet:
    """The user's claimed tasks, overdue first, then by due date and priority."""
    from django.db.models import F

    return (
        tasks_visible_to(user=user, capability=Capability.VIEW)
        .filter(assignee=user, status="CLAIMED")
        .select_related("queue", "process_instance")
        .defer(*LIST_PAGE_DEFERRED)
        .order_by(F("due_date").asc(nulls_last=True), "-priority", "created_at")
    )


QUEUE_FIGURES_SQL = """
SELECT queue_name, open_tasks, claimed_tasks, escalated_tasks, overdue_tasks, due_soon_tasks, oldest_open_at,
       computed_at
  FROM flowable.mv_queue_performance
 WHERE queue_name = ANY(%s)
"""


@replica_reads
def queue_dashboard(*, user) -> list:
    """Queues the user may view with their task counts and SLA figures, on the read replica when one serves
    (core/replica.py).

    The counts come from flowable.mv_queue_performance as of its last refresh (`figures_as_of`; refresh_dashboards
    refreshes it on a schedule), the load from the queue row, which every claim keeps current: no query counts the
    queues' tasks. Three queries whatever the number of queues: the queues, their figures, the capabilities held.
    """
    now = timezone.now()
    queues = list(queues_for(user=user, capability=Capability.VIEW).select_related("department").order_by("queue_name"))
    with connections[WorkflowTask.objects.db].cursor() as cursor:
        cursor.execute(QUEUE_FIGURES_SQL, [[queue.queue_name for queue in queues]])
        columns = [column.name for column in cursor.description]
        figures = {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}
    capabilities = capabilities_by_queue(user=user)
    for queue in queues:
        row = figures.get(queue.queue_name, {})
        queue.open_count = row.get("open_tasks", 0)
        queue.claimed_count = row.get("claimed_tasks", 0)
        queue.escalated_count = row.get("escalated_tasks", 0)
        queue.overdue_count = row.get("overdue_tasks", 0)
        queue.due_soon_count = row.get("due_soon_tasks", 0)
        oldest = row.get("oldest_open_at")
        queue.oldest_open_age_seconds = (now - oldest).total_seconds() if oldest else None
        queue.figures_as_of = row.get("computed_at")
        queue.capabilities = capabilities.get(queue.queue_name, [])
    return queues
