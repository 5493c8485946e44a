"""Queues: where tasks wait, with capacity, routing strategy, SLA defaults and escalation rules."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from entitlements.models import Department

from .calendar import CalendarError, WorkCalendar, describe_working_hours, parse_time_zone, parse_working_hours

STANDARD_WORKING_DAYS = ("mon", "tue", "wed", "thu", "fri")
STANDARD_OPENING, STANDARD_CLOSING = "09:00", "17:00"
# The express lane's threshold is an effective priority (tasks.models: priority 0-100, plus any aging boost).
EXPRESS_THRESHOLD_MIN, EXPRESS_THRESHOLD_MAX = 1, 100
# The express lane's credit, in hundredths of a claim: one express claim spends a whole one (flowable.claim_next_task).
EXPRESS_CREDIT_FULL = 100
DEFAULT_EXPRESS_SHARE_PERCENT = 50


class QueueType(models.TextChoices):
    STANDARD = "STANDARD", "Standard (FIFO with priority override)"
    PRIORITY = "PRIORITY", "Priority (weighted, express lane)"
    SPECIALIZED = "SPECIALIZED", "Specialized (department, skills)"


class RoutingStrategy(models.TextChoices):
    ROUND_ROBIN = "ROUND_ROBIN", "Round-robin"
    LEAST_LOADED = "LEAST_LOADED", "Least loaded"
    SKILL_BASED = "SKILL_BASED", "Skill-based"
    PRIORITY_WEIGHTED = "PRIORITY_WEIGHTED", "Priority-weighted"


class AssignmentMode(models.TextChoices):
    PULL = "PULL", "Caseworkers pull (claim next)"
    PUSH = "PUSH", "Routing pushes new tasks to a caseworker"


def standard_working_hours() -> dict:
    """Monday to Friday, 09:00 to 17:00: what a new calendar starts with."""
    return {day: [[STANDARD_OPENING, STANDARD_CLOSING]] for day in STANDARD_WORKING_DAYS}


def validate_time_zone(value: str) -> None:
    try:
        parse_time_zone(value)
    except CalendarError as exc:
        raise ValidationError(str(exc), code="invalid_time_zone") from None


class BusinessCalendar(models.Model):
    """When SLA hours run: working hours per weekday in a time zone, less holidays. Used by queues and departments."""

    calendar_id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(
        max_length=64, validators=[validate_time_zone], help_text="IANA time zone the hours are in, e.g. Europe/London."
    )
    working_hours = models.JSONField(
        default=standard_working_hours,
        blank=True,  # so that an empty week reaches clean() and is refused there with the reason
        help_text=(
            'Local opening hours per weekday, e.g. {"mon": [["09:00", "12:30"], ["13:30", "17:00"]], "tue": ...}. '
            'Days are mon..sun; a day left out is a day off; a window may close at "24:00".'
        ),
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = 'queues"."business_calendars'
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            parse_working_hours(self.working_hours)
        except CalendarError as exc:
            raise ValidationError({"working_hours": str(exc)}, code="invalid_working_hours") from None

    @property
    def working_week(self) -> str:
        return describe_working_hours(self.working_hours)

    def work_calendar(self, holidays=None) -> WorkCalendar:
        """The arithmetic form; holidays default to this calendar's (prefetch them when building many)."""
        dates = holidays if holidays is not None else [h.date for h in self.holidays.all()]
        return WorkCalendar.build(time_zone=self.time_zone, working_hours=self.working_hours, holidays=dates)


class BusinessHoliday(models.Model):
    """A whole local date on which the calendar's queues do not work."""

    holiday_id = models.BigAutoField(primary_key=True)
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=200)

    class Meta:
        db_table = 'queues"."business_holidays'
        ordering = ["calendar", "date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="business_holiday_once_per_date")]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}"


class DepartmentCalendar(models.Model):
    """The calendar of a department's queues that name none of their own. Lives here: entitlements imports no app."""

    link_id = models.BigAutoField(primary_key=True)
    department = models.OneToOneField(Department, on_delete=models.CASCADE, related_name="business_calendar_link")
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="department_links")

    class Meta:
        db_table = 'queues"."department_calendars'
        ordering = ["department"]

    def __str__(self) -> str:
        return f"{self.department}: {self.calendar}"


class WorkflowQueue(models.Model):
    queue_id = models.BigAutoField(primary_key=True)
    queue_name = models.SlugField(max_length=100, unique=True)
    display_name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    queue_type = models.CharField(max_length=20, choices=QueueType.choices, default=QueueType.STANDARD)
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.PROTECT, related_name="queues")
    max_capacity = models.IntegerField(default=1000, help_text="Most CLAIMED tasks the queue carries at once.")
    current_load = models.IntegerField(
        default=0, help_text="CLAIMED tasks now; kept in the same transaction as each claim."
    )
    routing_strategy = models.CharField(
        max_length=20, choices=RoutingStrategy.choices, default=RoutingStrategy.ROUND_ROBIN
    )
    assignment_mode = models.CharField(max_length=10, choices=AssignmentMode.choices, default=AssignmentMode.PULL)
    required_skills = ArrayField(models.SlugField(max_length=50), default=list, blank=True)
    overflow_queue = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="overflow_sources"
    )
    escalation_rules = models.JSONField(default=list, blank=True, help_text="Ordered escalation levels.")
    sla_default_hours = models.PositiveIntegerField(default=72)
    sla_priority_hours = models.JSONField(
        default=dict, blank=True, help_text='Per-priority SLA hours, e.g. {"90": 4, "70": 24}.'
    )
    business_calendar = models.ForeignKey(
        BusinessCalendar,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="queues",
        help_text="SLA hours count in this calendar. Empty: the department's calendar, else round the clock.",
    )
    priority_weight = models.PositiveIntegerField(
        default=1,
        help_text="Weight of this queue under priority-weighted routing, and of its tasks' aging when aging is on.",
    )
    # Risk-driven priority and the express lane (flowable.claim_next_task, tasks/sla/aging.py).
    aging_enabled = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Open tasks' effective priority rises with their wait in business hours and their SLA breach "
        "risk, times the priority weight (recomputed by the SLA-risk job).",
    )
    express_threshold = models.IntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(EXPRESS_THRESHOLD_MIN), MaxValueValidator(EXPRESS_THRESHOLD_MAX)],
        help_text="Express lane: open tasks of at least this effective priority are claimed first, up to the "
        "express share of claims. Empty: no express lane.",
    )
    express_share_percent = models.PositiveSmallIntegerField(
        default=DEFAULT_EXPRESS_SHARE_PERCENT,
        db_default=DEFAULT_EXPRESS_SHARE_PERCENT,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Most percent of claim-next's claims the express lane takes while other tasks wait.",
    )
    # Kept by claim-next on the row it locks and updates anyway: every claim adds the share, an express claim
    # spends EXPRESS_CREDIT_FULL; never above EXPRESS_CREDIT_FULL, so unused share does not pile up.
    express_credit = models.PositiveSmallIntegerField(
        default=EXPRESS_CREDIT_FULL,
        db_default=EXPRESS_CREDIT_FULL,
        editable=False,
        help_text="The express lane's allowance now, in hundredths of a claim (a claim needs 100).",
    )
    intake_paused = models.BooleanField(default=False)
    round_robin_cursor = models.BigIntegerField(default=0, help_text="Id of the user last given a task by round-robin.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = 'queues"."workflow_queues'
        ordering = ["queue_name"]
        permissions = [
            ("work_workflowqueue", "Can claim and complete tasks of the queue"),
            ("supervise_workflowqueue", "Can supervise the queue"),
            ("deploy_workflowqueue", "Can deploy workflows that route to the queue"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(max_capacity__gte=0), name="queue_capacity_non_negative"),
            models.CheckConstraint(condition=Q(current_load__gte=0), name="queue_load_non_negative"),
            models.CheckConstraint(condition=Q(queue_type__in=QueueType.values), name="queue_type_valid"),
            models.CheckConstraint(
                condition=Q(routing_strategy__in=RoutingStrategy.values), name="queue_routing_strategy_valid"
            ),
            models.CheckConstraint(
                condition=Q(assignment_mode__in=AssignmentMode.values), name="queue_assignment_mode_valid"
            ),
            models.CheckConstraint(condition=~Q(overflow_queue=models.F("queue_id")), name="queue_not_own_overflow"),
            models.CheckConstraint(
                condition=Q(express_threshold__isnull=True)
                | Q(express_threshold__gte=EXPRESS_THRESHOLD_MIN, express_threshold__lte=EXPRESS_THRESHOLD_MAX),
                name="queue_express_threshold_in_range",
            ),
            models.CheckConstraint(
                condition=Q(express_share_percent__gte=1, express_share_percent__lte=100),
                name="queue_express_share_in_range",
            ),
            models.CheckConstraint(
                condition=Q(express_credit__gte=0, express_credit__lte=EXPRESS_CREDIT_FULL),
                name="queue_express_credit_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.queue_name

    @property
    def utilisation(self) -> float | None:
        return None if not self.max_capacity else self.current_load / self.max_capacity


class QueueUserObjectPermission(UserObjectPermissionBase):
    """Direct foreign-key permission rows (django-guardian), so permission lookups join on integers."""

    content_object = models.ForeignKey(WorkflowQueue, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        db_table = 'queues"."queue_user_permissions'


class QueueGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(WorkflowQueue, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        db_table = 'queues"."queue_group_permissions'


class QueueStatistics(models.Model):
    """A snapshot of one queue's figures, written by update_queue_statistics."""

    statistics_id = models.BigAutoField(primary_key=True)
    queue = models.ForeignKey(WorkflowQueue, on_delete=models.CASCADE, related_name="statistics")
    computed_at = models.DateTimeField(default=timezone.now)
    open_count = models.IntegerField(default=0)
    claimed_count = models.IntegerField(default=0)
    escalated_count = models.IntegerField(default=0)
    overdue_count = models.IntegerField(default=0)
    completed_last_24h = models.IntegerField(default=0)
    avg_open_age_seconds = models.FloatField(null=True, blank=True)
    oldest_open_age_seconds = models.FloatField(null=True, blank=True)
    sla_compliance_pct = models.FloatField(null=True, blank=True)

    class Meta:
        db_table = 'queues"."queue_statistics'
        ordering = ["-computed_at"]
        indexes = [models.Index(fields=["queue", "-computed_at"], name="queue_stats_queue_time")]
        verbose_name_plural = "queue statistics"

    def __str__(self) -> str:
        return f"{self.queue} at {self.computed_at:%Y-%m-%d %H:%M}"
