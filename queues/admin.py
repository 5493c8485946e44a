"""Admin for queues and their statistics."""
from django.contrib import admin

from .models import QueueStatistics, WorkflowQueue


@admin.register(WorkflowQueue)
class WorkflowQueueAdmin(admin.ModelAdmin):
    list_display = (
        "queue_name", "display_name", "queue_type", "department", "current_load", "max_capacity",
        "routing_strategy", "assignment_mode", "sla_default_hours", "intake_paused",
    )
    list_filter = ("queue_type", "routing_strategy", "assignment_mode", "department", "intake_paused")
    search_fields = ("queue_name", "display_name", "description")
    list_select_related = ("department",)
    readonly_fields = ("current_load", "round_robin_cursor", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # Tasks refer to a queue by name: renaming would orphan them.
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "queue_name") if obj else fields


@admin.register(QueueStatistics)
class QueueStatisticsAdmin(admin.ModelAdmin):
    list_display = ("queue", "computed_at", "open_count", "claimed_count", "escalated_count", "overdue_count", "completed_last_24h")
    list_filter = ("queue",)
    list_select_related = ("queue",)
    date_hierarchy = "computed_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
