"""Admin for queues, their business calendars and their statistics."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html_join

from core.errors import WorkflowError
from entitlements.models import Capability

from .calendar import iana_time_zones
from .escalation import parse_rules
from .models import BusinessCalendar, BusinessHoliday, DepartmentCalendar, QueueStatistics, WorkflowQueue
from .selectors import queue_business_calendar, queue_people


class WorkflowQueueForm(forms.ModelForm):
    class Meta:
        model = WorkflowQueue
        fields = "__all__"  # noqa: DJ007 - an admin form: the queue admin edits every field
        help_texts = {
            "escalation_rules": (
                "Ordered levels, each applied once to a task that reached the level before it. For example: "
                '[{"level": 1, "trigger": {"type": "before_due", "hours": 4}, "actions": {"raise_priority": 10}}, '
                '{"level": 2, "trigger": {"type": "overdue_by", "hours": 24}, '
                '"actions": {"move_to_queue": "escalations", "notify": true}}]. '
                "Triggers: overdue; before_due, overdue_by, open_longer_than (with hours: clock hours, not business "
                "hours). Actions: raise_priority (by 0–100), move_to_queue, reassign_to_supervisor, notify."
            )
        }

    def clean_escalation_rules(self):
        rules = self.cleaned_data.get("escalation_rules")
        try:
            parse_rules(rules)
        except WorkflowError as exc:
            raise forms.ValidationError(list(exc.fields.get("escalation_rules", [exc.detail]))) from exc
        return rules


@admin.register(WorkflowQueue)
class WorkflowQueueAdmin(admin.ModelAdmin):
    form = WorkflowQueueForm
    list_display = (
        "queue_name",
        "display_name",
        "queue_type",
        "department",
        "current_load",
        "max_capacity",
        "routing_strategy",
        "assignment_mode",
        "sla_default_hours",
        "business_calendar",
        "intake_paused",
        "aging_enabled",
        "express_threshold",
    )
    list_filter = ("queue_type", "routing_strategy", "assignment_mode", "department", "intake_paused")
    search_fields = ("queue_name", "display_name", "description")
    list_select_related = ("department", "business_calendar")
    readonly_fields = (
        "current_load",
        "express_credit",
        "round_robin_cursor",
        "created_at",
        "updated_at",
        "workers_now",
        "supervisors_now",
        "sla_hours_count_in",
    )

    def _people(self, queue, capability):
        if queue is None or queue.pk is None:
            return "—"
        people = queue_people(queue=queue, capability=capability)
        return format_html_join(", ", "{}", ((u.get_username(),) for u in people)) or "nobody"

    @admin.display(description="who can work it now")
    def workers_now(self, queue):
        return self._people(queue, Capability.WORK)

    @admin.display(description="who supervises it now")
    def supervisors_now(self, queue):
        return self._people(queue, Capability.SUPERVISE)

    @admin.display(description="SLA hours count in")
    def sla_hours_count_in(self, queue):
        if queue is None or queue.pk is None:
            return "—"
        calendar = queue_business_calendar(queue=queue)
        if calendar is None:
            return "round the clock (no calendar on the queue or its department)"
        return f"{calendar} ({calendar.time_zone}: {calendar.working_week})"

    def get_readonly_fields(self, request, obj=None):
        # Tasks refer to a queue by name: renaming would orphan them.
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "queue_name") if obj else fields


class BusinessHolidayInline(admin.TabularInline):
    model = BusinessHoliday
    extra = 1
    ordering = ("date",)


class DepartmentCalendarInline(admin.TabularInline):
    model = DepartmentCalendar
    extra = 0
    verbose_name = "department whose queues use this calendar unless they name their own"
    verbose_name_plural = "departments whose queues use this calendar unless they name their own"


class BusinessCalendarForm(forms.ModelForm):
    time_zone = forms.ChoiceField(help_text="IANA time zone the working hours are in.")

    class Meta:
        model = BusinessCalendar
        fields = ("name", "time_zone", "working_hours")
        widgets = {"working_hours": forms.Textarea(attrs={"rows": 9, "cols": 60})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [("", "---------")] + [(zone, zone) for zone in sorted(iana_time_zones())]


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    form = BusinessCalendarForm
    list_display = ("name", "time_zone", "working_week", "holiday_count", "used_by")
    search_fields = ("name", "time_zone")
    readonly_fields = ("working_week", "created_at", "updated_at")
    fields = ("name", "time_zone", "working_hours", "working_week", "created_at", "updated_at")
    inlines = (BusinessHolidayInline, DepartmentCalendarInline)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("holidays", "queues", "department_links__department")

    @admin.display(description="working week")
    def working_week(self, calendar):
        return calendar.working_week

    @admin.display(description="holidays")
    def holiday_count(self, calendar):
        return len(calendar.holidays.all())

    @admin.display(description="used by")
    def used_by(self, calendar):
        names = [queue.queue_name for queue in calendar.queues.all()]
        names += [f"{link.department} (department)" for link in calendar.department_links.all()]
        return ", ".join(names) or "—"


@admin.register(QueueStatistics)
class QueueStatisticsAdmin(admin.ModelAdmin):
    list_display = (
        "queue",
        "computed_at",
        "open_count",
        "claimed_count",
        "escalated_count",
        "overdue_count",
        "completed_last_24h",
    )
    list_filter = ("queue",)
    list_select_related = ("queue",)
    date_hierarchy = "computed_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
