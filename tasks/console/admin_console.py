"""The supervisor console's admin pieces: scoping to supervised queues, bulk actions, fast paging and filters.

Decisions:
- Rows: a supervisor's changelists show only the queues they supervise now (entitlements.access.queues_for with
  "supervise"). Superusers see every row (entitlements.access.console_shows_every_row says why). Acting is
  another matter: every action calls the domain service per object, and the services check "supervise"
  themselves, so a superuser without a supervising role, or anyone posting ids of rows they cannot see, gets a
  per-row refusal.
- Actions are thin: parse a small form, call one service per selected row, turn each WorkflowError into an
  admin message. Nothing here writes a task, queue or process directly.
- Big tables: no COUNT(*) over everything (EstimatedCountPaginator), no full-result count, no filter whose
  choices need a DISTINCT over the tasks table, and a default order an index can serve (newest task first).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property

from core.errors import Conflict, NotFound, PermissionDenied, WorkflowError
from entitlements.authentication import client_address
from entitlements.models import Capability, Department, SecurityEvent, User
from entitlements.selectors import console_rows_unfiltered
from entitlements.services import security_event_record
from queues.models import WorkflowQueue
from queues.selectors import queues_for_user
from queues.services import queue_intake_set
from tasks import services
from tasks.bpmn import workflows
from tasks.models import MAX_PRIORITY, MIN_PRIORITY, ProcessIncident, TaskStatus, WorkflowTask

ACTION_FORM_TEMPLATE = "admin/console/action_form.html"
# A capped count stops here; the changelist then offers this many rows' pages and filters narrow the rest.
# Counting reads the rows it counts, so the cap bounds what a filtered page spends on its count.
COUNT_CAP = 2_000
# Every row of the console's lists goes through Django admin's rendering; a page of this many stays quick.
LIST_PER_PAGE = 50
# Error messages listed one by one before the rest are summed up, so a 500-row failure stays readable.
MAX_LISTED_ERRORS = 10
HIGH_PRIORITY = 75
LOW_PRIORITY = 25


# --- rows: only what the user supervises ------------------------------------------------------------------------


def supervised_queues(user):
    return queues_for_user(user=user, capability=Capability.SUPERVISE)


class SupervisedQueuesMixin:
    """Limit a ModelAdmin's rows to the queues request.user supervises now; superusers see every row.

    `supervised_queue_lookup` names the path from the model to a queue *name* (tasks: "queue_id", queues:
    "queue_name"). Models reached through tasks (process instances) override `limit_to_supervised`.
    """

    supervised_queue_lookup = "queue_id"

    def limit_to_supervised(self, request, queryset):
        names = supervised_queues(request.user).values("queue_name")
        return queryset.filter(**{f"{self.supervised_queue_lookup}__in": names})

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if console_rows_unfiltered(user=request.user):
            return queryset
        return self.limit_to_supervised(request, queryset)


class SupervisedProcessesMixin(SupervisedQueuesMixin):
    """Process instances with at least one task in a supervised queue (the rule process_suspend & co. apply)."""

    def limit_to_supervised(self, request, queryset):
        names = supervised_queues(request.user).values("queue_name")
        tasks = WorkflowTask.objects.filter(process_instance=OuterRef("pk"), queue_id__in=names)
        return queryset.filter(Exists(tasks))


# --- paging without COUNT(*) over millions ----------------------------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """Counts at most COUNT_CAP rows; an unfiltered listing of a big table uses the planner's estimate instead.

    The estimate (pg_class.reltuples, kept by autovacuum/ANALYZE) is only trusted above the cap: below it an
    exact capped count is cheap.
    """

    @cached_property
    def count(self):
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None:
            return super().count
        if not query.where:
            estimate = table_row_estimate(queryset.model._meta.db_table)
            if estimate > COUNT_CAP:
                return estimate
        return queryset.order_by()[:COUNT_CAP].count()


def table_row_estimate(db_table: str) -> int:
    schema, _, table = db_table.replace('"', "").rpartition(".")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            [schema or "public", table],
        )
        row = cursor.fetchone()
    return max(int(row[0]), 0) if row else 0


class DeferringChangeList(ChangeList):
    """A changelist that leaves its model admin's `list_deferred` columns in the database."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.defer(*self.model_admin.list_deferred)


class DeferredColumnsMixin:
    """A changelist whose rows leave `list_deferred` unread: columns no list column shows and that cost to read (a
    workflow's engine state or BPMN, sealed text decrypted on load), across list_select_related relations too
    ("process_instance__engine_state"). A row's own page reads them as usual."""

    list_deferred: tuple[str, ...] = ()

    def get_changelist(self, request, **kwargs):
        return DeferringChangeList if self.list_deferred else super().get_changelist(request, **kwargs)


class FastChangelistMixin(DeferredColumnsMixin):
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = LIST_PER_PAGE


# --- list filters -----------------------------------------------------------------------------------------------


class OverdueFilter(admin.SimpleListFilter):
    """Active tasks past their due date (idx_workflow_tasks_overdue serves both answers)."""

    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        now = timezone.now()
        active = Q(status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED])
        if self.value() == "yes":
            return queryset.filter(active, due_date__lt=now)
        if self.value() == "no":
            return queryset.filter(active).filter(Q(due_date__gte=now) | Q(due_date__isnull=True))
        return queryset


class PriorityFilter(admin.SimpleListFilter):
    """Priority bands: fixed choices, so the filter never asks the table which priorities exist."""

    title = "priority"
    parameter_name = "priority_band"

    def lookups(self, request, model_admin):
        return (
            ("high", f"High ({HIGH_PRIORITY}–{MAX_PRIORITY})"),
            ("normal", f"Normal ({LOW_PRIORITY + 1}–{HIGH_PRIORITY - 1})"),
            ("low", f"Low ({MIN_PRIORITY}–{LOW_PRIORITY})"),
        )

    def queryset(self, request, queryset):
        bands = {
            "high": Q(priority__gte=HIGH_PRIORITY),
            "normal": Q(priority__gt=LOW_PRIORITY, priority__lt=HIGH_PRIORITY),
            "low": Q(priority__lte=LOW_PRIORITY),
        }
        return queryset.filter(bands[self.value()]) if self.value() in bands else queryset


class DepartmentFilter(admin.SimpleListFilter):
    """Tasks whose queue belongs to a department (choices from the small departments table)."""

    title = "department"
    parameter_name = "department"
    queue_path = "queue"

    def lookups(self, request, model_admin):
        return [(str(d.pk), d.dept_name) for d in Department.objects.order_by("dept_name")]

    def queryset(self, request, queryset):
        if not self.value() or not self.value().isdigit():
            return queryset
        names = WorkflowQueue.objects.filter(department_id=int(self.value())).values("queue_name")
        return queryset.filter(**{f"{self.queue_path}__in": names})


class QueueDepartmentFilter(DepartmentFilter):
    """The same filter on the queues changelist."""

    def queryset(self, request, queryset):
        if not self.value() or not self.value().isdigit():
            return queryset
        return queryset.filter(department_id=int(self.value()))


class AssigneeFilter(admin.SimpleListFilter):
    """Unassigned, or held by one person; choices from the users table (active, not service accounts)."""

    title = "assignee"
    parameter_name = "assignee"
    UNASSIGNED = "none"

    def lookups(self, request, model_admin):
        people = User.objects.filter(is_active=True).exclude(is_service_account=True).order_by("username")
        return [(self.UNASSIGNED, "Unassigned")] + [(str(u.pk), u.get_username()) for u in people]

    def queryset(self, request, queryset):
        if self.value() == self.UNASSIGNED:
            return queryset.filter(assignee__isnull=True)
        if self.value() and self.value().isdigit():
            return queryset.filter(assignee_id=int(self.value()))
        return queryset


# --- running a service per row ----------------------------------------------------------------------------------


@dataclass
class BulkOutcome:
    done: list = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def run_per_row(ids, call, *, request=None) -> BulkOutcome:
    """Call `call(pk)` for each id; each call is its own service transaction, so one refusal stops nothing else.

    With `request`, a PermissionDenied is written to the security audit (the service's own writes rolled back).
    """
    outcome = BulkOutcome()
    for pk in ids:
        try:
            call(pk)
        except NotFound:
            outcome.refused.append(f"#{pk}: not in a queue you supervise")
        except WorkflowError as exc:
            if request is not None and isinstance(exc, PermissionDenied):
                security_event_record(
                    event_type=SecurityEvent.Type.PERMISSION_DENIED,
                    actor=request.user,
                    remote_addr=client_address(request),
                    path=request.path,
                    details={"method": request.method, "reason": exc.detail, "admin": True, "task_id": pk},
                )
            outcome.refused.append(f"#{pk}: {exc.detail}")
        else:
            outcome.done.append(pk)
    return outcome


def report(modeladmin, request, outcome: BulkOutcome, *, verb: str, noun: str = "task") -> None:
    if outcome.done:
        plural = noun if len(outcome.done) == 1 else f"{noun}s"
        modeladmin.message_user(request, f"{verb} {len(outcome.done)} {plural}.", messages.SUCCESS)
    for line in outcome.refused[:MAX_LISTED_ERRORS]:
        modeladmin.message_user(request, f"Not {verb.lower()}: {line}", messages.ERROR)
    hidden = len(outcome.refused) - MAX_LISTED_ERRORS
    if hidden > 0:
        modeladmin.message_user(request, f"… and {hidden} more refused.", messages.ERROR)


def selected_ids(queryset) -> list[int]:
    return list(queryset.order_by("pk").values_list("pk", flat=True))


def action_form_page(modeladmin, request, queryset, *, form, title: str, action: str, submit: str):
    """The intermediate page of an action that needs input: the form plus the selected rows, posted back."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "action": action,
        "submit_label": submit,
        "selected": selected_ids(queryset),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
        "count": queryset.count(),
    }
    return TemplateResponse(request, ACTION_FORM_TEMPLATE, context)


def _bound(form_class, request):
    """The action's form, bound once the intermediate page was submitted (its 'apply' button)."""
    return form_class(request.POST) if "apply" in request.POST else form_class()


# --- task action forms ------------------------------------------------------------------------------------------


class ReassignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True, is_service_account=False).order_by("username"),
        to_field_name="username",
        help_text="Must be allowed to work the task's queue and hold the skills it needs.",
    )
    comment = forms.CharField(required=False, max_length=1000)


class EscalateForm(forms.Form):
    priority = forms.IntegerField(
        min_value=MIN_PRIORITY,
        max_value=MAX_PRIORITY,
        required=False,
        help_text="New priority (not lower than now). Leave empty to keep it.",
    )
    queue = forms.ModelChoiceField(
        queryset=WorkflowQueue.objects.order_by("queue_name"),
        required=False,
        to_field_name="queue_name",
        help_text="Move to this queue. Leave empty to stay.",
    )
    reason = forms.CharField(max_length=1000)

    def clean(self):
        data = super().clean()
        if data.get("priority") is None and not data.get("queue"):
            raise forms.ValidationError("Give a new priority, a queue, or both.")
        return data


class MoveForm(forms.Form):
    queue = forms.ModelChoiceField(queryset=WorkflowQueue.objects.order_by("queue_name"), to_field_name="queue_name")
    reason = forms.CharField(required=False, max_length=1000)


class PriorityForm(forms.Form):
    priority = forms.IntegerField(min_value=MIN_PRIORITY, max_value=MAX_PRIORITY)
    reason = forms.CharField(required=False, max_length=1000)


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=1000)


# --- task actions -----------------------------------------------------------------------------------------------


@admin.action(description="Reassign selected tasks…")
def reassign_tasks(modeladmin, request, queryset):
    form = _bound(ReassignForm, request)
    if not form.is_bound or not form.is_valid():
        return action_form_page(
            modeladmin, request, queryset, form=form, title="Reassign tasks", action="reassign_tasks", submit="Reassign"
        )
    assignee, comment = form.cleaned_data["assignee"], form.cleaned_data["comment"]
    outcome = run_per_row(
        selected_ids(queryset),
        lambda pk: services.task_reassign(user=request.user, task_id=pk, assignee=assignee, comment=comment),
    )
    report(modeladmin, request, outcome, verb="Reassigned")
    return None


@admin.action(description="Escalate selected tasks…")
def escalate_tasks(modeladmin, request, queryset):
    form = _bound(EscalateForm, request)
    if not form.is_bound or not form.is_valid():
        return action_form_page(
            modeladmin, request, queryset, form=form, title="Escalate tasks", action="escalate_tasks", submit="Escalate"
        )
    data = form.cleaned_data
    queue_name = data["queue"].queue_name if data.get("queue") else None
    outcome = run_per_row(
        selected_ids(queryset),
        lambda pk: services.task_escalate(
            user=request.user, task_id=pk, priority=data.get("priority"), queue_name=queue_name, reason=data["reason"]
        ),
        request=request,
    )
    report(modeladmin, request, outcome, verb="Escalated")
    return None


@admin.action(description="Move selected tasks to another queue…")
def move_tasks(modeladmin, request, queryset):
    form = _bound(MoveForm, request)
    if not form.is_bound or not form.is_valid():
        return action_form_page(
            modeladmin, request, queryset, form=form, title="Move tasks to a queue", action="move_tasks", submit="Move"
        )
    data = form.cleaned_data
    outcome = run_per_row(
        selected_ids(queryset),
        lambda pk: services.task_move(
            user=request.user, task_id=pk, queue_name=data["queue"].queue_name, reason=data["reason"]
        ),
        request=request,
    )
    report(modeladmin, request, outcome, verb="Moved")
    return None


@admin.action(description="Release selected tasks to their queues")
def release_tasks(modeladmin, request, queryset):
    outcome = run_per_row(
        selected_ids(queryset),
        lambda pk: services.task_release(user=request.user, task_id=pk, comment="released by a supervisor"),
    )
    report(modeladmin, request, outcome, verb="Released")


@admin.action(description="Change priority of selected tasks…")
def change_task_priority(modeladmin, request, queryset):
    form = _bound(PriorityForm, request)
    if not form.is_bound or not form.is_valid():
        return action_form_page(
            modeladmin,
            request,
            queryset,
            form=form,
            title="Change priority",
            action="change_task_priority",
            submit="Change priority",
        )
    data = form.cleaned_data
    outcome = run_per_row(
        selected_ids(queryset),
        lambda pk: services.task_change_priority(
            user=request.user, task_id=pk, priority=data["priority"], reason=data["reason"]
        ),
    )
    report(modeladmin, request, outcome, verb="Changed the priority of")
    return None


TASK_ACTIONS = [reassign_tasks, escalate_tasks, move_tasks, release_tasks, change_task_priority]


# --- queue actions ----------------------------------------------------------------------------------------------


@admin.action(description="Pause intake of selected queues")
def pause_intake(modeladmin, request, queryset):
    names = list(queryset.order_by("queue_name").values_list("queue_name", flat=True))
    outcome = run_per_row(names, lambda name: queue_intake_set(user=request.user, queue_name=name, paused=True))
    report(modeladmin, request, outcome, verb="Paused intake of", noun="queue")


@admin.action(description="Resume intake of selected queues")
def resume_intake(modeladmin, request, queryset):
    names = list(queryset.order_by("queue_name").values_list("queue_name", flat=True))
    outcome = run_per_row(names, lambda name: queue_intake_set(user=request.user, queue_name=name, paused=False))
    report(modeladmin, request, outcome, verb="Resumed intake of", noun="queue")


@admin.action(description="Rebalance now (move OPEN tasks of full queues to their overflow)")
def rebalance_now(modeladmin, request, queryset):
    """Rebalance the selected queues that are full, into overflows the user also supervises (the service checks)."""
    names = list(queryset.values_list("queue_name", flat=True))
    moves = services.rebalance_queue_loads(queue_names=names, user=request.user)
    if not moves:
        modeladmin.message_user(
            request,
            "Nothing to rebalance among the selected queues you supervise (full, with an overflow that has room).",
            messages.INFO,
        )
    for move in moves:
        modeladmin.message_user(
            request, f"Moved {move['tasks']} tasks from {move['from_queue']} to {move['to_queue']}.", messages.SUCCESS
        )


QUEUE_ACTIONS = [rebalance_now, pause_intake, resume_intake]


# --- process instance actions -----------------------------------------------------------------------------------


@admin.action(description="Suspend selected process instances")
def suspend_processes(modeladmin, request, queryset):
    outcome = run_per_row(
        selected_ids(queryset), lambda pk: workflows.process_suspend(user=request.user, process_instance_id=pk)
    )
    report(modeladmin, request, outcome, verb="Suspended", noun="process instance")


@admin.action(description="Resume selected process instances")
def resume_processes(modeladmin, request, queryset):
    outcome = run_per_row(
        selected_ids(queryset), lambda pk: workflows.process_resume(user=request.user, process_instance_id=pk)
    )
    report(modeladmin, request, outcome, verb="Resumed", noun="process instance")


@admin.action(description="Cancel selected process instances…")
def cancel_processes(modeladmin, request, queryset):
    form = _bound(CancelForm, request)
    if not form.is_bound or not form.is_valid():
        return action_form_page(
            modeladmin,
            request,
            queryset,
            form=form,
            title="Cancel process instances",
            action="cancel_processes",
            submit="Cancel the processes",
        )
    reason = form.cleaned_data["reason"]
    outcome = run_per_row(
        selected_ids(queryset),
        lambda pk: workflows.process_cancel(user=request.user, process_instance_id=pk, reason=reason),
    )
    report(modeladmin, request, outcome, verb="Cancelled", noun="process instance")
    return None


@admin.action(description="Retry the failed step of selected process instances (open incidents)")
def retry_incidents(modeladmin, request, queryset):
    """Re-run the step each selected instance's open incident records; the service checks who may."""
    open_incidents = dict(
        ProcessIncident.objects.filter(process_instance__in=selected_ids(queryset), resolved_at__isnull=True)
        .order_by("process_instance_id")
        .values_list("process_instance_id", "pk")
    )

    def retry(pk):
        if pk not in open_incidents:
            raise Conflict("it has no open incident", code="no_open_incident")
        incident = workflows.process_incident_retry(user=request.user, incident_id=open_incidents[pk])
        if incident.resolved_at is None:
            raise Conflict(f"failed again at {incident.element_id or 'the engine'}: {incident.message}")

    outcome = run_per_row(selected_ids(queryset), retry)
    report(modeladmin, request, outcome, verb="Retried", noun="process instance")


PROCESS_ACTIONS = [suspend_processes, resume_processes, cancel_processes, retry_incidents]


# --- ready-made bundles for the ModelAdmins ---------------------------------------------------------------------


TASK_LIST_FILTERS = ("status", "queue", PriorityFilter, OverdueFilter, AssigneeFilter, DepartmentFilter)
QUEUE_LIST_FILTERS = ("queue_type", "routing_strategy", "assignment_mode", QueueDepartmentFilter, "intake_paused")


class TaskConsoleMixin(FastChangelistMixin, SupervisedQueuesMixin):
    """WorkflowTaskAdmin: supervised rows, bulk actions, no full counts, an index-served default order."""

    supervised_queue_lookup = "queue_id"
    actions = TASK_ACTIONS
    list_filter = TASK_LIST_FILTERS
    ordering = ("-task_id",)  # the primary key serves it; the model's (-priority, created_at) would sort everything


class QueueConsoleMixin(SupervisedQueuesMixin):
    supervised_queue_lookup = "queue_name"
    actions = QUEUE_ACTIONS
    list_filter = QUEUE_LIST_FILTERS


class ProcessConsoleMixin(FastChangelistMixin, SupervisedProcessesMixin):
    actions = PROCESS_ACTIONS
    ordering = ("-process_instance_id",)


class HistoryConsoleMixin(FastChangelistMixin, SupervisedQueuesMixin):
    """Task history: read-only already; scoped to the tasks of supervised queues."""

    supervised_queue_lookup = "task__queue_id"
    ordering = ("-event_id",)
