"""Admin for queues and their statistics."""
from django.contrib import admin
from django.utils.html import format_html_join

from entitlements.access import users_with
from entitlements.models import Capability

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
    readonly_fields = ("current_load", "round_robin_cursor", "created_at", "updated_at", "workers_now", "supervisors_now")

    def _people(self, queue, capability):
        if queue is None or queue.pk is None:
            return "—"
        people = users_with(capability=capability, queue=queue).order_by("username")
        return format_html_join(", ", "{}", ((u.get_username(),) for u in people)) or "nobody"

    @admin.display(description="who can work it now")
    def workers_now(self, queue):
        return self._people(queue, Capability.WORK)

    @admin.display(description="who supervises it now")
    def supervisors_now(self, queue):
        return self._people(queue, Capability.SUPERVISE)

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
