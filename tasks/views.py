"""Caseworker pages: the inbox, the queues' open tasks, and the task page where work is claimed and completed.

Server-rendered; htmx (hx-boost in base.html) only makes navigation and the queue filters smoother, so every
page and action works without JavaScript. Views are thin: each action is one service call, and a domain error
becomes a message beside the form or at the top of the page, never an error page. Tasks outside the user's
queues are 404, and the denial is written to the security audit as the API does.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods

from core import encryption
from core.errors import Conflict, InvalidInput, NotFound, WorkflowError
from core.links import per_object_url
from core.pagination import COUNT_CAP, CURSOR_PARAM, ApproximateCount, InvalidCursor, KeysetList
from core.replica import replica_reads
from entitlements.authentication import denial_record
from entitlements.detail_reads import detail_read_record, detail_read_refusal_record
from entitlements.models import Capability, DetailReadChannel, DetailReadObject
from queues.selectors import queue_names_for_user

from . import notifications, selectors, services
from .forecast.selectors import tasks_at_risk
from .models import MAX_PRIORITY, MIN_PRIORITY, ArchivedTask, TaskStatus
from .routing_explanation import routing_decisions

INBOX_PAGE_SIZE = 25
QUEUE_PAGE_SIZE = 50
# The order of the queue page, claim-next's, which the partial index of open tasks (idx_workflow_tasks_claim_open)
# serves.
QUEUE_ORDERING = ["-effective_priority", "created_at", "task_id"]
QUEUE_COUNT_CAP = COUNT_CAP
DUE_SOON = timedelta(hours=24)
BOOLEAN_TRUE = "true"
BOOLEAN_FALSE = "false"
FIELD_PREFIX = "var_"
WHOLE_NUMBER = re.compile(r"[0-9]{1,6}")
# PostgreSQL text and JSONB cannot hold NUL: refuse it as input instead of failing on insert.
UNSTORABLE = "\x00"
UNSTORABLE_MESSAGE = "Contains a character that cannot be stored."


# --- shared by the page views (cases/views.py too) -----------------------------------------------------------------


def not_found_page(request, error: NotFound):
    """A 404 page for an object outside the user's queues (or absent); a real denial goes to the security audit."""
    denial_record(request=request, error=error, surface="page")
    return render(request, "tasks/not_found.html", {"detail": "There is nothing here you can open."}, status=404)


def safe_next(request, default: str) -> str:
    """The `next` form field if it points back into this site, else `default` (no open redirects)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@dataclass
class DueState:
    """How a due date reads on a page: a word for the badge's colour and a sentence that says it in text."""

    kind: str  # overdue | soon | ok | none
    label: str


def due_state(due_date, now, *, status: str = TaskStatus.OPEN, completed_at=None) -> DueState:
    """How the due date stands: for a task still to do, against now; for a finished one, against when it was
    finished (a completed task is not "due in a week")."""
    from django.utils.timesince import timesince, timeuntil

    if status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED, TaskStatus.ESCALATED):
        if due_date is None or completed_at is None or status != TaskStatus.COMPLETED:
            return DueState("done", "Finished")
        if completed_at <= due_date:
            return DueState("done", "Done on time")
        return DueState("done-late", f"Done {timesince(due_date, completed_at, depth=1)} late")
    if due_date is None:
        return DueState("none", "No due date")
    if due_date < now:
        return DueState("overdue", f"Overdue by {timesince(due_date, now, depth=1)}")
    kind = "soon" if due_date - now < DUE_SOON else "ok"
    return DueState(kind, f"Due in {timeuntil(due_date, now, depth=1)}")


def annotate_due(tasks, now) -> list:
    """Each task's due state, and whether its SLA-risk forecast says it is at risk (one query for the page)."""
    tasks = list(tasks)
    at_risk = tasks_at_risk(
        task_ids=[task.pk for task in tasks if task.status in (TaskStatus.OPEN, TaskStatus.CLAIMED)]
    )
    for task in tasks:
        task.due = due_state(task.due_date, now)
        task.at_risk = task.pk in at_risk
    return tasks


# --- inbox ----------------------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def inbox(request):
    """GET: my claimed tasks, overdue first. POST: claim the next task (optionally from one of my queues)."""
    if request.method == "POST":
        return claim_next(request)
    now = timezone.now()
    paginator = Paginator(selectors.tasks_for_inbox(user=request.user), INBOX_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = annotate_due(page.object_list, now)
    return render(
        request,
        "inbox/inbox.html",
        {
            "page": page,
            "workable_queues": queue_names_for_user(user=request.user, capability=Capability.WORK),
            "selected_queue": request.GET.get("queue", ""),
        },
    )


def claim_next(request):
    queue = request.POST.get("queue", "").strip()
    if queue and queue not in queue_names_for_user(user=request.user, capability=Capability.WORK):
        messages.error(request, "Pick one of the queues you work to claim from.")
        return HttpResponseRedirect(reverse("inbox"))
    task = services.task_claim_next(user=request.user, queue_names=[queue] if queue else None)
    if task is None:
        where = f"in {queue}" if queue else "in your queues"
        messages.info(request, f"No task is waiting {where} that you can take right now.")
        return HttpResponseRedirect(reverse("inbox"))
    messages.success(request, f"You claimed “{task.name}”.")
    return HttpResponseRedirect(reverse("task-page", args=[task.pk]))


# --- queues ---------------------------------------------------------------------------------------------------------


@dataclass
class QueueFilters:
    queue: str = ""
    min_priority: int | None = None
    overdue: bool = False
    errors: dict = field(default_factory=dict)


def parse_queue_filters(params, viewable: list[str]) -> QueueFilters:
    filters = QueueFilters()
    queue = params.get("queue", "").strip()
    if queue and queue not in viewable:
        filters.errors["queue"] = "Pick one of your queues."
    else:
        filters.queue = queue
    raw = params.get("min_priority", "").strip()
    if raw:
        if WHOLE_NUMBER.fullmatch(raw) and MIN_PRIORITY <= int(raw) <= MAX_PRIORITY:
            filters.min_priority = int(raw)
        else:
            filters.errors["min_priority"] = f"A whole number from {MIN_PRIORITY} to {MAX_PRIORITY}."
    filters.overdue = params.get("overdue") in {"1", "on", "true"}
    return filters


@require_GET
@replica_reads
def queue_tasks(request):
    """Open tasks in the queues I may view, highest priority and oldest first, with a claim button where I may work.

    Pages by cursor (core/pagination.py): each page is merged from one probe per queue of the index of open tasks,
    and the count stops at COUNT_CAP (past it, the planner's estimate), so no page reads or counts every open task
    of the queues. A `page` number from an old link is ignored (the first page). Read on the read replica when one
    serves (core/replica.py): a task claimed a moment ago answers its claim 409.
    """
    now = timezone.now()
    viewable, workable = selectors.task_list_and_workable_queue_names(user=request.user)
    filters = parse_queue_filters(request.GET, viewable)
    tasks = selectors.tasks_listed_for(user=request.user, queue_names=viewable).filter(status=TaskStatus.OPEN)
    if filters.queue:
        tasks = tasks.filter(queue_id=filters.queue)
    if filters.min_priority is not None:
        # The page's priority is claim-next's, the effective one (with any aging boost): one range of the index.
        tasks = tasks.filter(effective_priority__gte=filters.min_priority)
    if filters.overdue:
        tasks = tasks.filter(due_date__lt=now)
    listing = KeysetList(
        tasks.select_related("process_instance").defer(*selectors.LIST_PAGE_DEFERRED),
        ordering=QUEUE_ORDERING,
        partitions={"queue": [filters.queue] if filters.queue else viewable},
    )
    try:
        page = listing.page(cursor=request.GET.get(CURSOR_PARAM) or None, size=QUEUE_PAGE_SIZE)
    except InvalidCursor:
        page = listing.page(size=QUEUE_PAGE_SIZE)  # a mangled link: start again at the top
    if page.next_cursor or page.previous_cursor:
        # Past the cap, the planner's figure for this set of queues and filters, kept a while (core/estimates.py).
        held = (filters.queue or ",".join(viewable), filters.min_priority, filters.overdue)
        count = listing.count(cap=QUEUE_COUNT_CAP, estimate_key="queue-page\n" + repr(held))
    else:
        count = ApproximateCount(len(page.rows))
    rows = annotate_due(page.rows, now)
    task_url, claim_url = per_object_url("task-page"), per_object_url("task-page-claim")
    for task in rows:
        task.can_claim = task.queue_id in workable
        task.url, task.claim_url = task_url(task.pk), claim_url(task.pk)
    query = request.GET.copy()
    for name in (CURSOR_PARAM, "page"):
        query.pop(name, None)
    context = {
        "tasks": rows,
        "filters": filters,
        "viewable_queues": viewable,
        "count": count,
        "next_cursor": page.next_cursor,
        "previous_cursor": page.previous_cursor,
        "query": query.urlencode(),
        "here": request.get_full_path(),
    }
    template = (
        "inbox/_queue_results.html" if request.htmx and request.htmx.target == "queue-results" else "inbox/queues.html"
    )
    return render(request, template, context)


# --- task page ------------------------------------------------------------------------------------------------------


def case_summary_for(task):
    """The case a task's process belongs to. By model label: the tasks app never imports cases (DESIGN.md).

    Seeing the task means seeing the case: a case is visible through the queues of its tasks.
    """
    if not task.process_instance_id or not apps.is_installed("cases"):
        return None
    mapping_model = apps.get_model("cases", "CaseWorkflowMapping")
    mapping = mapping_model.objects.filter(process_instance_id=task.process_instance_id).select_related("case").first()
    return mapping.case if mapping else None


def form_rows(task, submitted=None, errors=None) -> list[dict]:
    """The task's declared form fields as rows for the template, with the value to show and any messages."""
    submitted = submitted if submitted is not None else {}
    errors = errors or {}
    rows = []
    for spec in task.form_fields or []:
        name = str(spec["id"])
        kind = spec.get("type", "string")
        if name in submitted:
            value = submitted[name]
        else:
            value = encryption.reveal(task.variables.get(name, ""))  # sensitive fields are stored sealed
        if kind == "boolean":
            value = value is True or str(value).lower() in {"true", "on", "yes"}
        choices = [
            {"id": str(v["id"]), "name": v.get("name") or str(v["id"])}
            if isinstance(v, dict)
            else {"id": str(v), "name": str(v)}
            for v in spec.get("values", [])
        ]
        rows.append(
            {
                "name": FIELD_PREFIX + name,
                "html_id": f"field-{name}",
                "label": spec.get("label") or name,
                "type": kind,
                "required": bool(spec.get("required")),
                "value": "" if value is None else value,
                "choices": choices,
                "errors": errors.get(name, []),
            }
        )
    return rows


def submitted_variables(task, post) -> dict:
    """Form data as the service expects it: declared fields only; an unticked checkbox is false."""
    variables = {}
    for spec in task.form_fields or []:
        name = str(spec["id"])
        if spec.get("type") == "boolean":
            variables[name] = BOOLEAN_TRUE if post.get(FIELD_PREFIX + name) else BOOLEAN_FALSE
        else:
            variables[name] = post.get(FIELD_PREFIX + name, "")
    return variables


def render_task_page(
    request,
    task_id: int,
    *,
    submitted=None,
    field_errors=None,
    completion_comment="",
    comment="",
    comment_errors=(),
    status=200,
):
    try:
        task = selectors.task_or_archived_for_user(user=request.user, task_id=task_id)
    except NotFound as error:
        detail_read_refusal_record(
            request=request,
            channel=DetailReadChannel.PAGE,
            object_type=DetailReadObject.TASK,
            object_id=task_id,
            error=error,
        )
        return not_found_page(request, error)
    # Every page showing the task is a read of it: this one and a form shown again with its errors.
    detail_read_record(
        request=request,
        channel=DetailReadChannel.PAGE,
        object_type=DetailReadObject.TASK,
        object_id=task.pk,
        object_label=selectors.task_business_key(task=task),
    )
    history = list(selectors.task_history_of(task=task))
    decisions = routing_decisions(event for event in history if event.routing)
    archived = isinstance(task, ArchivedTask)  # read-only: no claim, completion or comment
    now = timezone.now()
    task.due = due_state(task.due_date, now, status=task.status, completed_at=task.completed_at)
    workable = not archived and task.queue_id in queue_names_for_user(user=request.user, capability=Capability.WORK)
    mine = task.status == TaskStatus.CLAIMED and task.assignee_id == request.user.pk
    non_field_errors = [
        m
        for key, msgs in (field_errors or {}).items()
        if key not in {str(f["id"]) for f in task.form_fields or []}
        for m in msgs
    ]
    return render(
        request,
        "tasks/task.html",
        {
            "task": task,
            "case": case_summary_for(task),
            "history": history,
            "routing_why": decisions[-1] if decisions else None,
            "fields": form_rows(task, submitted, field_errors),
            "non_field_errors": non_field_errors,
            "completion_comment": completion_comment,
            "comment": comment,
            "comment_errors": list(comment_errors),
            "can_claim": workable and task.status == TaskStatus.OPEN,
            "can_complete": workable and mine and task.delegation_state != "PENDING",
            "can_release": mine and not archived,
            "can_comment": not archived,
            "archived": archived,
            "is_mine": mine,
        },
        status=status,
    )


@require_GET
def task_page(request, task_id: int):
    return render_task_page(request, task_id)


def task_action(view):
    """A task page's form action: POST does it; any other method (an address bar showing /tasks/N/complete/ after
    a form came back with errors, reloaded or bookmarked) goes to the task page, never a bare 405."""

    @functools.wraps(view)
    def action(request, task_id: int):
        if request.method != "POST":
            return HttpResponseRedirect(reverse("task-page", args=[task_id]), status=303)
        return view(request, task_id)

    action.__wrapped__ = view
    return action


@task_action
def task_claim(request, task_id: int):
    try:
        task = services.task_claim(user=request.user, task_id=task_id)
    except NotFound as error:
        return not_found_page(request, error)
    except Conflict as error:
        messages.error(request, claim_conflict_message(error, task_id))
        return HttpResponseRedirect(safe_next(request, reverse("task-page", args=[task_id])))
    messages.success(request, f"You claimed “{task.name}”.")
    return HttpResponseRedirect(reverse("task-page", args=[task.pk]))


def claim_conflict_message(error: Conflict, task_id: int) -> str:
    if error.code == "task_claimed":
        return f"Task #{task_id} was just claimed by someone else. Pick another one, or claim the next task."
    if error.code.startswith("task_"):
        return f"Task #{task_id} can no longer be claimed: {error.detail}."
    return f"Could not claim task #{task_id}: {error.detail}."


@task_action
def task_release(request, task_id: int):
    try:
        task = services.task_release(user=request.user, task_id=task_id, comment=request.POST.get("comment", ""))
    except NotFound as error:
        return not_found_page(request, error)
    except WorkflowError as error:
        messages.error(request, f"Could not release task #{task_id}: {error.detail}.")
        return HttpResponseRedirect(reverse("task-page", args=[task_id]))
    messages.success(request, f"You released “{task.name}” back to {task.queue_id}.")
    return HttpResponseRedirect(reverse("inbox"))


@task_action
def task_complete(request, task_id: int):
    """Complete with the form's variables; bad input re-renders the form with what was typed and a message per field."""
    try:
        task = selectors.task_for_user(user=request.user, task_id=task_id)
    except NotFound as error:
        return not_found_page(request, error)
    variables = submitted_variables(task, request.POST)
    comment = request.POST.get("completion_comment", "")
    try:
        unstorable = {name: [UNSTORABLE_MESSAGE] for name, value in variables.items() if UNSTORABLE in value}
        if unstorable or UNSTORABLE in comment:
            raise InvalidInput(UNSTORABLE_MESSAGE, fields=unstorable or {"completion_comment": [UNSTORABLE_MESSAGE]})
        task = services.task_complete(user=request.user, task_id=task_id, variables=variables, comment=comment)
    except NotFound as error:
        return not_found_page(request, error)
    except InvalidInput as error:
        messages.error(request, "Some fields need attention: the task was not completed.")
        return render_task_page(
            request,
            task_id,
            submitted=variables,
            field_errors=error.fields or {"__all__": [error.detail]},
            completion_comment=comment,
            status=422,
        )
    except Conflict as error:
        messages.error(request, f"Could not complete task #{task_id}: {error.detail}.")
        return HttpResponseRedirect(reverse("task-page", args=[task_id]))
    messages.success(request, f"“{task.name}” is complete.")  # the page's message adds "Done:"
    return HttpResponseRedirect(reverse("inbox") + "?completed=" + str(task.pk))


@task_action
def task_comment(request, task_id: int):
    comment = request.POST.get("comment", "")
    try:
        if UNSTORABLE in comment:
            raise InvalidInput(UNSTORABLE_MESSAGE, fields={"comment": [UNSTORABLE_MESSAGE]})
        services.task_comment_add(user=request.user, task_id=task_id, comment=comment)
    except NotFound as error:
        return not_found_page(request, error)
    except InvalidInput as error:
        messages.error(request, "The comment was not added.")
        return render_task_page(
            request, task_id, comment=comment, comment_errors=error.fields.get("comment", [error.detail]), status=422
        )
    messages.success(request, "Comment added.")
    return HttpResponseRedirect(reverse("task-page", args=[task_id]) + "#history")


# --- notifications (tasks/notifications.py) -------------------------------------------------------------------------


@require_GET
def notification_list(request):
    """The user's notifications, newest first: unread ones marked, each opened through its own form."""
    items = list(notifications.notifications_for(user=request.user)[: notifications.LIST_LIMIT])
    return render(
        request,
        "notifications/list.html",
        {"items": items, "unread": sum(1 for n in items if n.read_at is None)},
    )


@require_http_methods(["POST"])
def notification_open(request, notification_id: int):
    """Mark the notification read and go to what it is about (the list when it links nowhere)."""
    try:
        notification = notifications.notification_mark_read(user=request.user, notification_id=notification_id)
    except NotFound as error:
        return not_found_page(request, error)
    return HttpResponseRedirect(notification.link or reverse("notification-list"), status=303)


@require_http_methods(["POST"])
def notifications_read_all(request):
    count = notifications.notifications_mark_all_read(user=request.user)
    messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} read.")
    return HttpResponseRedirect(reverse("notification-list"), status=303)


def notification_bell(request) -> dict:
    """Context processor: the header's unread count, counted only when a page shows the bell (a callable)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"notifications_unread": functools.partial(notifications.unread_count, user=user)}
