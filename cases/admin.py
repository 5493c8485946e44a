"""Admin for cases, their workflow mappings and their audit trail: read-only, scoped, with a case timeline page.

Decisions:
- Rows: a supervisor sees the cases one of whose tasks is or was in a queue they supervise now; a superuser sees
  every case (cases/selectors.py: supervised_case_filter). Mappings and case events follow their case.
- Read-only: a case changes only through cases/services.py, which appends a CaseEvent for every change. A raw
  edit here (status, assignee, title, priority) would leave no event, so there is no change, and no add either:
  case_open numbers the case, validates its allegations, starts its workflow and records the mapping, none of
  which an admin form would do. Delete is off too: cases, mappings and events are records (and PROTECTed).
- Big tables: ordered by primary key (an index serves it), counts capped, no date hierarchy (its min/max and
  DISTINCT over every visible case would be a full pass per page load).
- Personal data: retention policies are edited by superusers only (staff see them); erasing a person (a user, a
  case subject) is an action only superusers are offered; it checks at once and queues the erasure for the
  maintenance worker (cases/jobs.py: the web's database login may not rewrite history). The user admin
  is entitlements' own, re-registered here with that action: entitlements may not import cases.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from kombu.exceptions import OperationalError as KombuOperationalError

from core.errors import NotFound, WorkflowError
from entitlements.admin import DetailReadsAdminMixin
from entitlements.admin import UserAdmin as EntitlementsUserAdmin
from entitlements.authentication import client_address, denial_record
from entitlements.detail_reads import detail_read_refusal_record
from entitlements.models import DetailReadChannel, DetailReadObject, User
from tasks.admin import ReadOnlyAdmin
from tasks.console.admin_console import FastChangelistMixin, action_form_page, selected_ids
from tasks.models import WorkflowDefinition

from .jobs import erasure_queue
from .models import Case, CaseEvent, CaseSubject, CaseTombstone, CaseWorkflowMapping, RetentionPolicy
from .privacy.erasure import MAX_REASON, case_subjects_erase_check, user_erase_check
from .selectors import (
    TIMELINE_LIMIT_PER_KIND,
    TimelineKind,
    case_for_supervisor,
    case_timeline,
    supervised_case_filter,
)

TIMELINE_TEMPLATE = "admin/cases/case_timeline.html"
TIMELINE_URL_NAME = "cases_case_timeline"
KIND_PARAMETER = "kind"


class SupervisedCaseRowsMixin:
    """Rows of a case (or the case itself, with case_ref "pk") shown only while its case is in the user's scope."""

    case_ref = "case_id"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(supervised_case_filter(user=request.user, case_ref=self.case_ref))


class CaseWorkflowMappingInline(admin.TabularInline):
    model = CaseWorkflowMapping
    extra = 0
    can_delete = False
    fields = ("process_instance", "workflow_type", "routing_history", "created_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("process_instance__definition")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CaseSubjectInline(admin.TabularInline):
    """The case's people, personal fields opened for the supervisor who may see the case (read-only: they are
    added through cases/services.py, which records the event)."""

    model = CaseSubject
    extra = 0
    can_delete = False
    fields = ("role", "full_name", "email", "phone", "date_of_birth", "notes", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CaseEventInline(admin.TabularInline):
    model = CaseEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "event_type", "actor", "old_values", "new_values")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(DetailReadsAdminMixin, SupervisedCaseRowsMixin, FastChangelistMixin, ReadOnlyAdmin):
    case_ref = "pk"
    detail_read_object = DetailReadObject.CASE
    list_display = ("case_number", "title", "status", "priority", "assigned_to", "created_at", "timeline_link")
    list_filter = ("status",)
    search_fields = ("case_number",)  # the title is encrypted: it cannot be searched
    list_select_related = ("assigned_to",)
    list_deferred = ("description", "allegations")  # sealed, decrypted on load: the list shows titles
    ordering = ("-case_id",)  # the primary key serves it; the model's -created_at would sort every visible case
    fields = (
        "case_number",
        "title",
        "status",
        "priority",
        "assigned_to",
        "created_by",
        "description",
        "allegations",
        "created_at",
        "updated_at",
        "closed_at",
        "case_type",
        "redacted_at",
    )
    inlines = [CaseSubjectInline, CaseWorkflowMappingInline, CaseEventInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    def detail_read_label(self, case):
        return case.case_number

    @admin.display(description="timeline")
    def timeline_link(self, case):
        return format_html('<a href="{}">Timeline</a>', reverse(f"admin:{TIMELINE_URL_NAME}", args=[case.pk]))

    def get_urls(self):
        timeline = path(
            "<int:case_id>/timeline/", self.admin_site.admin_view(self.timeline_view), name=TIMELINE_URL_NAME
        )
        return [timeline, *super().get_urls()]

    def timeline_view(self, request, case_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        kind = request.GET.get(KIND_PARAMETER)
        kind = kind if kind in TimelineKind.values else None
        try:
            case = case_for_supervisor(user=request.user, case_id=case_id)
            entries = case_timeline(user=request.user, case_id=case_id, kinds=[kind] if kind else None)
        except NotFound as error:
            denial_record(request=request, error=error, surface="admin")
            detail_read_refusal_record(
                request=request,
                channel=DetailReadChannel.ADMIN,
                object_type=DetailReadObject.CASE,
                object_id=case_id,
                error=error,
            )
            raise Http404(error.detail) from error
        # The timeline shows the case's events with their values: a read of the case like its page.
        self.detail_read_write(request, case)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Timeline of {case.case_number}",
            "opts": self.model._meta,
            "case": case,
            "rows": [timeline_row(entry) for entry in entries],
            "chips": timeline_chips(selected=kind),
            "selected_kind": kind,
            "limit_per_kind": TIMELINE_LIMIT_PER_KIND,
        }
        return TemplateResponse(request, TIMELINE_TEMPLATE, context)


def timeline_row(entry) -> dict:
    """An entry as the page shows it: its old and new values as indented JSON for the details toggle."""
    return {
        "entry": entry,
        "old_json": json.dumps(entry.old_values, indent=2, sort_keys=True, ensure_ascii=False, default=str),
        "new_json": json.dumps(entry.new_values, indent=2, sort_keys=True, ensure_ascii=False, default=str),
    }


def timeline_chips(*, selected: str | None) -> list[dict]:
    """The kind filters as plain links (?kind=…), so they work without JavaScript."""
    chips = [{"label": "All", "query": "", "selected": selected is None}]
    chips += [
        {"label": label, "query": f"?{KIND_PARAMETER}={value}", "selected": selected == value, "kind": value}
        for value, label in TimelineKind.choices
    ]
    return chips


@admin.register(CaseWorkflowMapping)
class CaseWorkflowMappingAdmin(SupervisedCaseRowsMixin, FastChangelistMixin, ReadOnlyAdmin):
    list_display = ("case", "workflow_type", "process_instance", "created_at")
    list_filter = ("workflow_type",)
    search_fields = ("case__case_number", "process_instance__business_key")
    list_select_related = ("case", "process_instance__definition")
    list_deferred = (
        "routing_history",
        "case__title",
        "case__description",
        "case__allegations",
        "process_instance__engine_state",
        "process_instance__variables",
        "process_instance__definition__bpmn_xml",
        "process_instance__definition__engine_spec",
    )
    ordering = ("-mapping_id",)
    fields = ("case", "process_instance", "workflow_type", "routing_history", "created_at")


@admin.register(CaseEvent)
class CaseEventAdmin(SupervisedCaseRowsMixin, FastChangelistMixin, ReadOnlyAdmin):
    list_display = ("created_at", "case", "event_type", "actor")
    search_fields = ("=case__case_number",)
    list_select_related = ("case", "actor")
    ordering = ("-event_id",)
    fields = ("case", "event_type", "actor", "old_values", "new_values", "created_at")


# --- personal data ------------------------------------------------------------------------------------------------


class ErasureForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why the data is erased (recorded in the security audit, with the person's name removed).",
    )


class ErasureActionMixin:
    """Erasure is offered to superusers only; the service refuses anyone else as well."""

    def has_erase_permission(self, request) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)


def _erase_each(modeladmin, request, queryset, *, action: str, noun: str, kind: str, check) -> TemplateResponse | None:
    """Checks each selected person now (so a refusal shows at once) and queues the erasure of each for the
    maintenance worker (cases/jobs.py): the web's database login may not rewrite history."""
    form = ErasureForm(request.POST) if "apply" in request.POST else ErasureForm()
    if not form.is_bound or not form.is_valid():
        return action_form_page(
            modeladmin,
            request,
            queryset,
            form=form,
            title=f"Erase the personal data of {noun}s",
            action=action,
            submit="Erase",
        )
    reason = form.cleaned_data["reason"]
    queued, refused = 0, []
    for pk in selected_ids(queryset):
        try:
            check(pk, reason=reason, erased_by=request.user)
            erasure_queue(
                kind=kind,
                target_ids=[pk],
                reason=reason,
                erased_by=request.user,
                remote_addr=client_address(request),
                path=request.path,
            )
        except WorkflowError as exc:
            refused.append(f"#{pk}: {exc.detail}")
        except KombuOperationalError:
            refused.append(f"#{pk}: the job broker did not answer, nothing was queued; try again")
        else:
            queued += 1
    if queued:
        modeladmin.message_user(
            request,
            f"Queued the erasure of {queued} {noun}(s). Each is done by the maintenance worker in a moment and "
            "recorded in the security audit (Personal data erased); one refused meanwhile shows in Celery's task "
            "results (cases.erase_person).",
            messages.SUCCESS,
        )
    for line in refused:
        modeladmin.message_user(request, f"Not erased: {line}", messages.ERROR)
    return None


@admin.action(description="Erase personal data of selected users…", permissions=["erase"])
def erase_users(modeladmin, request, queryset):
    return _erase_each(
        modeladmin,
        request,
        queryset,
        action="erase_users",
        noun="user",
        kind="user",
        check=lambda pk, **kwargs: user_erase_check(user_id=pk, **kwargs),
    )


@admin.action(description="Erase personal data of selected case subjects (each one a person)…", permissions=["erase"])
def erase_case_subjects(modeladmin, request, queryset):
    return _erase_each(
        modeladmin,
        request,
        queryset,
        action="erase_case_subjects",
        noun="case subject",
        kind="case_subjects",
        check=lambda pk, **kwargs: case_subjects_erase_check(subject_ids=[pk], **kwargs),
    )


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(ErasureActionMixin, EntitlementsUserAdmin):
    actions = [*(EntitlementsUserAdmin.actions or ()), erase_users]


@admin.register(CaseSubject)
class CaseSubjectAdmin(ErasureActionMixin, SupervisedCaseRowsMixin, FastChangelistMixin, ReadOnlyAdmin):
    """People of the supervised cases. The personal fields are encrypted: the list searches by case number only
    (an encrypted field cannot be searched; erase_subject and export_subject find a person by keyed hash)."""

    list_display = ("subject_id", "case", "role", "full_name", "created_at")
    list_filter = ("role",)
    list_select_related = ("case",)
    search_fields = ("=case__case_number",)
    ordering = ("-subject_id",)
    fields = ("case", "role", "full_name", "email", "phone", "date_of_birth", "notes", "created_at")
    actions = [erase_case_subjects]


def case_type_choices() -> list[tuple[str, str]]:
    """The process keys deployed, and any case type already in a policy: a policy names one of them."""
    keys = set(WorkflowDefinition.objects.values_list("process_key", flat=True).distinct())
    keys |= set(RetentionPolicy.objects.values_list("case_type", flat=True))
    return [(key, key) for key in sorted(keys)]


class RetentionPolicyForm(forms.ModelForm):
    case_type = forms.ChoiceField(choices=case_type_choices, help_text="The process key cases of this type open with.")

    class Meta:
        model = RetentionPolicy
        fields = ("case_type", "keep_years_after_closure", "action", "enabled", "description")


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    """Staff see the policies; only superusers change them (a policy decides what is deleted)."""

    form = RetentionPolicyForm
    list_display = ("case_type", "keep_years_after_closure", "action", "enabled", "updated_at")
    list_filter = ("action", "enabled")

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(CaseTombstone)
class CaseTombstoneAdmin(FastChangelistMixin, ReadOnlyAdmin):
    list_display = ("case_number", "case_type", "closed_at", "deleted_at", "policy")
    list_select_related = ("policy",)
    search_fields = ("=case_number",)
    ordering = ("-tombstone_id",)
    fields = (
        "case_id",
        "case_number",
        "case_type",
        "status",
        "opened_at",
        "closed_at",
        "deleted_at",
        "policy",
        "policy_terms",
        "deleted_rows",
    )
