"""The console's external tasks: where each item stands, its history, and "retry" for items whose retries ran out.

Row-level security lets a superuser read the items (migration 0034); the retry action is a service that checks its
caller's explicit permission (tasks.change_externaltask or the worker permission) and acts in the system scope.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from ..console.admin_console import _bound, action_form_page, report, run_per_row, selected_ids
from ..models import ExternalTask, ExternalTaskHistory
from . import services

DEFAULT_RETRIES = 3


class RetryForm(forms.Form):
    retries = forms.IntegerField(min_value=1, max_value=100, initial=DEFAULT_RETRIES)


@admin.action(description="Retry: give selected external tasks retries and return them to the pool…")
def retry_external_tasks(modeladmin, request, queryset):
    form = _bound(RetryForm, request)
    if not form.is_bound or not form.is_valid():
        return action_form_page(
            modeladmin,
            request,
            queryset,
            form=form,
            title="Retry external tasks",
            action="retry_external_tasks",
            submit="Retry",
        )
    retries = form.cleaned_data["retries"]
    outcome = run_per_row(
        selected_ids(queryset),
        lambda pk: services.external_task_retry(user=request.user, external_task_id=pk, retries=retries),
        request=request,
    )
    report(modeladmin, request, outcome, verb="Retried", noun="external task")
    return None


class ExternalTaskHistoryInline(admin.TabularInline):
    model = ExternalTaskHistory
    extra = 0
    can_delete = False
    fields = ("created_at", "event_type", "actor", "worker_id", "new_values")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ExternalTask)
class ExternalTaskAdmin(admin.ModelAdmin):
    list_display = (
        "external_task_id",
        "topic_name",
        "activity_id",
        "process_instance",
        "status",
        "retries",
        "worker_id",
        "lock_expires_at",
        "error_message",
    )
    list_filter = ("status", "topic_name")
    search_fields = ("topic_name", "activity_id", "worker_id")
    list_select_related = ("process_instance__definition",)
    actions = [retry_external_tasks]
    inlines = [ExternalTaskHistoryInline]
    readonly_fields = [f.name for f in ExternalTask._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
