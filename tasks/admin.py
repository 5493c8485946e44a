"""Admin for workflow definitions, process instances, tasks and task history, and alerts."""

import json
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core import encryption
from core.errors import NotFound, WorkflowError
from core.errors import PermissionDenied as DomainPermissionDenied
from entitlements.admin import DetailReadsAdminMixin
from entitlements.authentication import client_address, denial_record
from entitlements.models import DetailReadObject, SecurityEvent
from entitlements.services import security_event_record
from queues.admin import WorkflowQueueAdmin
from queues.models import WorkflowQueue

from .bpmn.diagram import ACTIVE, COMPLETED, NEUTRAL, STATE_LABELS, STATE_PALETTES, process_diagram_for
from .bpmn.workflows import definition_deploy_if_changed, processes_migrate
from .console.admin_console import (
    PROCESS_ACTIONS,
    DeferredColumnsMixin,
    HistoryConsoleMixin,
    ProcessConsoleMixin,
    QueueConsoleMixin,
    TaskConsoleMixin,
)
from .models import (
    Alert,
    AlertChannel,
    AlertChannelKind,
    AlertDelivery,
    AlertDeliveryAttempt,
    AlertKind,
    AlertRule,
    ProcessIncident,
    ProcessInstance,
    TaskHistory,
    WorkflowDefinition,
    WorkflowTask,
)
from .routing_explanation import routing_explained
from .selectors import task_business_key


class DefinitionUploadForm(forms.Form):
    """A BPMN 2.0 file to deploy as the next version of its process key. Validates the upload only: the admin's
    add view hands it to the deploy service, and the service's refusals show beside the file field."""

    bpmn_file = forms.FileField(label="BPMN 2.0 file", help_text="A .bpmn file from any BPMN editor.")
    sla_config = forms.JSONField(required=False, initial=dict, help_text='e.g. {"tasks": {"triage": 48}}')

    def clean_bpmn_file(self):
        upload = self.cleaned_data["bpmn_file"]
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(DeferredColumnsMixin, admin.ModelAdmin):
    list_display = ("process_key", "version", "name", "is_active", "deployed_by", "deployed_at")
    list_deferred = ("bpmn_xml", "engine_spec")
    list_filter = ("process_key", "is_active")
    search_fields = ("process_key", "name")
    list_select_related = ("deployed_by",)
    readonly_fields = (
        "process_key",
        "version",
        "name",
        "bpmn_xml",
        "sla_config",
        "engine_spec",
        "deployed_by",
        "deployed_at",
    )
    fields = ("process_key", "version", "name", "is_active", "sla_config", "deployed_by", "deployed_at", "bpmn_xml")
    upload_fields = ("bpmn_file", "sla_config")

    def add_view(self, request, form_url="", extra_context=None):
        """Deploy through definition_deploy_if_changed, the same service (and checks) as the API and deploy_workflow."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DefinitionUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                deployment = definition_deploy_if_changed(
                    user=request.user,
                    bpmn_xml=form.cleaned_data["bpmn_file"],
                    sla_config=form.cleaned_data.get("sla_config") or None,
                )
            except WorkflowError as exc:
                if isinstance(exc, DomainPermissionDenied):
                    security_event_record(
                        event_type=SecurityEvent.Type.PERMISSION_DENIED,
                        actor=request.user,
                        remote_addr=client_address(request),
                        path=request.path,
                        details={"method": request.method, "reason": exc.detail, "admin": True},
                    )
                form.add_error("bpmn_file", exc.detail)
            else:
                definition = deployment.definition
                if deployment.created:
                    self.message_user(
                        request, f"Deployed {definition.process_key} version {definition.version}.", messages.SUCCESS
                    )
                else:
                    self.message_user(
                        request,
                        f"{definition.process_key} unchanged: still version {definition.version}.",
                        messages.INFO,
                    )
                return redirect(reverse("admin:tasks_workflowdefinition_change", args=[definition.pk]))
        admin_form = helpers.AdminForm(form, [(None, {"fields": self.upload_fields})], {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": "Deploy a workflow definition",
            "subtitle": None,
            "adminform": admin_form,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, form_url=form_url)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        obj.save(update_fields=["is_active"])  # versions are immutable; only retiring one is allowed

    def save_related(self, request, form, formsets, change):
        return None

    def has_delete_permission(self, request, obj=None):
        return False


PROCESS_DIAGRAM_TEMPLATE = "admin/console/process_diagram.html"


class OpenedVariablesMixin:
    """Shows `variables` with sensitive form values opened (they are stored sealed), read-only: the stored JSON
    would show ciphertext, and editing it would write workflow state past the services."""

    exclude = ("variables",)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "variables_opened")

    @admin.display(description="variables")
    def variables_opened(self, obj):
        text = json.dumps(encryption.reveal(obj.variables or {}), indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)


class ProcessIncidentInline(admin.TabularInline):
    """Steps that failed outside a request (beat jobs); the list's "Retry" action runs an open one again."""

    model = ProcessIncident
    extra = 0
    can_delete = False
    fields = ("created_at", "step", "kind", "element_id", "message", "resolved_at", "resolved_by")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ProcessMigrateForm(forms.Form):
    target_version = forms.IntegerField(min_value=1, help_text="A version of the same process key.")
    activity_mapping = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60}),
        required=False,
        help_text="One line per renamed element: old_id=new_id. Elements not named keep their id.",
    )
    reason = forms.CharField(required=False, max_length=20_000)

    def clean_activity_mapping(self) -> dict[str, str]:
        mapping = {}
        for number, line in enumerate(self.cleaned_data["activity_mapping"].splitlines(), start=1):
            if not line.strip():
                continue
            old, sep, new = line.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise forms.ValidationError(f"line {number} is not old_id=new_id")
            mapping[old.strip()] = new.strip()
        return mapping


@admin.register(ProcessInstance)
class ProcessInstanceAdmin(OpenedVariablesMixin, ProcessConsoleMixin, admin.ModelAdmin):
    list_display = (
        "process_instance_id",
        "business_key",
        "definition",
        "status",
        "sla_due_date",
        "started_at",
        "ended_at",
        "diagram_link",
    )
    list_filter = ("status", "definition__process_key")
    search_fields = ("business_key",)
    list_select_related = ("definition",)
    list_deferred = ("engine_state", "variables", "definition__bpmn_xml", "definition__engine_spec")
    readonly_fields = ("diagram_link", "engine_state", "parent_instance", "parent_engine_task_id")
    raw_id_fields = ("definition", "started_by")
    inlines = [ProcessIncidentInline]
    actions = [*PROCESS_ACTIONS, "migrate_to_version"]  # the console's suspend, resume, cancel and retry, and this

    @admin.action(description="Migrate to version…")
    def migrate_to_version(self, request, queryset):
        """An intermediate page asks for the version and the mapping; then process_migrate for each instance (it
        checks the supervisor's queues), and the counts of those migrated and refused as messages."""
        form = ProcessMigrateForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            ids = sorted(queryset.values_list("pk", flat=True))
            try:
                report = processes_migrate(
                    user=request.user,
                    process_instance_ids=ids,
                    target_version=form.cleaned_data["target_version"],
                    activity_mapping=form.cleaned_data["activity_mapping"],
                    reason=form.cleaned_data["reason"],
                )
            except WorkflowError as error:
                self.message_user(request, f"Nothing migrated: {error.detail}", messages.ERROR)
                return None
            self.message_user(request, f"{len(report.migrated)} migrated.", messages.SUCCESS)
            if report.refused:
                refused = "; ".join(f"#{pk}: {', '.join(why)}" for pk, why in report.refused.items())
                self.message_user(
                    request, f"{len(report.refused)} refused (left as they were): {refused}", messages.WARNING
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Migrate to version…",
            "form": form,
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/tasks/process_migrate.html", context)

    def get_urls(self):
        diagram = path(
            "<int:object_id>/diagram/",
            self.admin_site.admin_view(self.diagram_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_diagram",
        )
        # Before the defaults: their "<path:object_id>/" would swallow ".../diagram/".
        return [diagram, *super().get_urls()]

    def get_fields(self, request, obj=None):
        fields = [name for name in super().get_fields(request, obj) if name != "diagram_link"]
        return fields if obj is None else ["diagram_link", *fields]

    @admin.display(description="Diagram")
    def diagram_link(self, instance):
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_diagram", args=[instance.pk])
        return format_html('<a href="{}">Diagram</a>', url)

    def diagram_view(self, request, object_id: int):
        """The instance's BPMN diagram with where it stands, and its open tasks: read-only."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            # The changelist's own rows: an instance the user may not see there does not exist here either.
            diagram = process_diagram_for(instances=self.get_queryset(request), process_instance_id=object_id)
        except NotFound as error:
            denial_record(request=request, error=error, surface="admin")
            raise Http404(f"process instance {object_id} not found") from None
        legend = [
            {"label": STATE_LABELS[state], "palette": STATE_PALETTES[state]} for state in (ACTIVE, COMPLETED, NEUTRAL)
        ]
        context = {
            **self.admin_site.each_context(request),
            "is_nav_sidebar_enabled": False,  # a wide drawing: the page gets the full width
            "opts": self.opts,
            "original": diagram.instance,
            "title": f"Diagram of {diagram.instance}",
            # Safe: process_diagram_svg builds the SVG with ElementTree, which escapes every string from the model.
            "svg": mark_safe(diagram.svg),
            "problem": diagram.problem,
            "current_tasks": diagram.current_tasks,
            "legend": legend,
        }
        return TemplateResponse(request, PROCESS_DIAGRAM_TEMPLATE, context)


class TaskHistoryInline(admin.TabularInline):
    model = TaskHistory
    extra = 0
    can_delete = False
    fields = ("created_at", "event_type", "actor", "via_account", "old_values", "new_values", "comment", "why")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="why routed")
    def why(self, event):
        """The routing decision this event recorded, in words (push routing, claim-next, assignment by hand)."""
        explained = routing_explained(event.routing, actor=event.actor.get_username() if event.actor_id else None)
        if explained is None:
            return ""
        return format_html(
            "{}<ul>{}</ul>",
            explained.headline,
            format_html_join("", "<li>{}</li>", ((reason,) for reason in explained.reasons)),
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shows rows; changes go through services (bulk actions) or nowhere."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Every change of a task is a workflow step with history (claim, complete, reassign, escalate, move, release,
# priority): the bulk actions run the services. The model form would write a row without any of that.
@admin.register(WorkflowTask)
class WorkflowTaskAdmin(DetailReadsAdminMixin, OpenedVariablesMixin, TaskConsoleMixin, ReadOnlyAdmin):
    """Tasks of the supervised queues; a task's page is a read in the access audit and shows who looked at it."""

    list_display = (
        "task_id",
        "name",
        "queue",
        "status",
        "priority",
        "assignee",
        "due_date",
        "escalation_level",
        "created_at",
    )
    search_fields = ("=process_instance__business_key", "name")
    list_select_related = ("queue", "assignee")
    list_deferred = ("variables", "form_fields")
    inlines = [TaskHistoryInline]
    detail_read_object = DetailReadObject.TASK

    def detail_read_label(self, task):
        return task_business_key(task=task)


@admin.register(TaskHistory)
class TaskHistoryAdmin(HistoryConsoleMixin, admin.ModelAdmin):
    list_display = ("created_at", "task", "event_type", "actor", "via_account")
    list_filter = ("event_type",)
    search_fields = ("task__task_id",)
    list_select_related = ("task", "actor", "via_account")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Alerts -----------------------------------------------------------------------------------------------------


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    """The alert kinds the system raises, with when each last fired. Kinds are fixed by code: no add or delete."""

    list_display = ("kind", "description", "enabled", "severity", "threshold_percent", "last_fired", "alerts_link")
    list_editable = ("enabled", "severity")
    readonly_fields = ("kind", "last_fired")
    fields = ("kind", "description", "enabled", "severity", "threshold_percent", "last_fired")

    def get_queryset(self, request):
        last = Alert.objects.filter(kind=OuterRef("kind")).order_by("-created_at").values("created_at")[:1]
        return super().get_queryset(request).annotate(last_fired_at=Subquery(last))

    @admin.display(description="last fired", ordering="last_fired_at")
    def last_fired(self, rule):
        return rule.last_fired_at or "never"

    @admin.display(description="alerts")
    def alerts_link(self, rule):
        url = reverse("admin:tasks_alert_changelist") + f"?kind__exact={rule.kind}"
        return format_html('<a href="{}">view</a>', url)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("name", "kind", "enabled", "alert_kinds", "target", "created_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    actions = ["send_test_alert"]
    fieldsets = (
        (None, {"fields": ("name", "kind", "enabled", "alert_kinds")}),
        ("Slack or Teams", {"fields": ("webhook_url",)}),
        ("Email", {"fields": ("email_recipients",)}),
        ("PagerDuty", {"fields": ("routing_key", "events_url")}),
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "alert_kinds":  # checkboxes, not a comma-separated text box
            return forms.TypedMultipleChoiceField(
                choices=AlertKind.choices,
                widget=forms.CheckboxSelectMultiple,
                required=False,
                help_text=db_field.help_text,
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="sends to")
    def target(self, channel):
        if channel.kind == AlertChannelKind.EMAIL:
            return ", ".join(channel.email_recipients)
        if channel.kind == AlertChannelKind.PAGERDUTY:
            return channel.events_url
        return urlsplit(channel.webhook_url).netloc  # the path of a webhook URL is its secret

    @admin.action(description="Send a test alert to the selected channels now")
    def send_test_alert(self, request, queryset):
        from .sla.alerts import alert_channel_test

        for channel in queryset:
            problem = alert_channel_test(channel=channel)
            if problem:
                self.message_user(request, f"Test alert to {channel.name} failed: {problem}", messages.ERROR)
            else:
                self.message_user(request, f"Test alert sent to {channel.name}.", messages.SUCCESS)


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    can_delete = False
    fields = ("channel", "status", "attempts", "last_error", "last_attempt_at", "delivered_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "severity", "queue_name", "task_id", "level", "summary")
    list_filter = ("kind", "severity", "queue_name", "created_at")
    search_fields = ("dedupe_key", "summary", "queue_name")
    date_hierarchy = "created_at"
    # task_id, not the task: an archived task's row has left workflow_tasks, the alert stays.
    fields = ("kind", "severity", "dedupe_key", "queue_name", "task_id", "level", "summary", "details", "created_at")
    inlines = [AlertDeliveryInline]
    show_full_result_count = False


class AlertDeliveryAttemptInline(admin.TabularInline):
    model = AlertDeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "outcome", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    inlines = [AlertDeliveryAttemptInline]
    list_display = (
        "delivery_id",
        "alert",
        "channel",
        "status",
        "attempts",
        "last_error",
        "last_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "channel", "alert__kind")
    search_fields = ("alert__dedupe_key", "last_error")
    list_select_related = ("alert", "channel")
    show_full_result_count = False


# Queue actions (rebalance, pause intake) need tasks.services, and queues must not import tasks: the queue admin is
# re-registered here, scoped to the queues the supervisor supervises.
admin.site.unregister(WorkflowQueue)


@admin.register(WorkflowQueue)
class SupervisedWorkflowQueueAdmin(QueueConsoleMixin, WorkflowQueueAdmin):
    """The queues admin scoped to supervised queues, with rebalance / pause / resume intake."""


from . import admin_decisions  # noqa: E402,F401  DMN decisions' admin (registers itself)
from .external import admin as external_admin  # noqa: E402, F401  (registers the external tasks console)
