"""Admin for cases, their workflow mappings and their audit trail."""
from django.contrib import admin

from .models import Case, CaseEvent, CaseWorkflowMapping


class CaseWorkflowMappingInline(admin.TabularInline):
    model = CaseWorkflowMapping
    extra = 0
    can_delete = False
    fields = ("process_instance", "workflow_type", "routing_history", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class CaseEventInline(admin.TabularInline):
    model = CaseEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "event_type", "actor", "old_values", "new_values")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ("case_number", "title", "status", "priority", "assigned_to", "created_at")
    list_filter = ("status",)
    search_fields = ("case_number", "title")
    list_select_related = ("assigned_to",)
    raw_id_fields = ("assigned_to", "created_by")
    inlines = [CaseWorkflowMappingInline, CaseEventInline]
    date_hierarchy = "created_at"


@admin.register(CaseWorkflowMapping)
class CaseWorkflowMappingAdmin(admin.ModelAdmin):
    list_display = ("case", "workflow_type", "process_instance", "created_at")
    list_filter = ("workflow_type",)
    search_fields = ("case__case_number", "process_instance__business_key")
    list_select_related = ("case", "process_instance")
    readonly_fields = ("case", "process_instance", "workflow_type", "routing_history", "created_at")
