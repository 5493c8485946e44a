"""Admin for workflow definitions, process instances, tasks and task history."""
from django.contrib import admin

from .models import ProcessInstance, TaskHistory, WorkflowDefinition, WorkflowTask


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(admin.ModelAdmin):
    list_display = ("process_key", "version", "name", "is_active", "deployed_by", "deployed_at")
    list_filter = ("process_key", "is_active")
    search_fields = ("process_key", "name")
    list_select_related = ("deployed_by",)
    readonly_fields = ("engine_spec",)


@admin.register(ProcessInstance)
class ProcessInstanceAdmin(admin.ModelAdmin):
    list_display = ("process_instance_id", "business_key", "definition", "status", "sla_due_date", "started_at", "ended_at")
    list_filter = ("status", "definition__process_key")
    search_fields = ("business_key",)
    list_select_related = ("definition",)
    readonly_fields = ("engine_state",)
    raw_id_fields = ("definition", "started_by")


class TaskHistoryInline(admin.TabularInline):
    model = TaskHistory
    extra = 0
    can_delete = False
    fields = ("created_at", "event_type", "actor", "via_account", "old_values", "new_values", "comment")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WorkflowTask)
class WorkflowTaskAdmin(admin.ModelAdmin):
    list_display = ("task_id", "name", "queue", "status", "priority", "assignee", "due_date", "escalation_level", "created_at")
    list_filter = ("status", "queue", "escalation_level")
    search_fields = ("name", "process_instance__business_key")
    list_select_related = ("queue", "assignee")
    raw_id_fields = ("process_instance", "assignee", "owner")
    inlines = [TaskHistoryInline]
    show_full_result_count = False


@admin.register(TaskHistory)
class TaskHistoryAdmin(admin.ModelAdmin):
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
