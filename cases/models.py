"""Cases (OneCMS): the business record an investigation is about, linked to the workflow that moves it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Func, Q, Value
from django.utils import timezone

from tasks.models import ProcessInstance


class CaseStatus(models.TextChoices):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    ON_HOLD = "ON_HOLD"
    CLOSED = "CLOSED"


class AllegationType(models.TextChoices):
    FRAUD = "FRAUD", "Fraud"
    MISCONDUCT = "MISCONDUCT", "Misconduct"
    HARASSMENT = "HARASSMENT", "Harassment"
    CONFLICT_OF_INTEREST = "CONFLICT_OF_INTEREST", "Conflict of interest"
    OTHER = "OTHER", "Other"


class Case(models.Model):
    case_id = models.BigAutoField(primary_key=True)
    case_number = models.CharField(max_length=40, unique=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    allegations = models.JSONField(default=list, blank=True, help_text="List of {type, description, date}.")
    status = models.CharField(max_length=20, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    priority = models.IntegerField(default=50)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="assigned_cases"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = 'onecms"."cases'
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CaseStatus.values), name="case_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="CLOSED") | Q(closed_at__isnull=False), name="case_closed_has_time"
            ),
            models.CheckConstraint(condition=Q(priority__gte=0, priority__lte=100), name="case_priority_in_range"),
        ]
        indexes = [models.Index(fields=["assigned_to", "status"], name="idx_cases_assignee_status")]

    def __str__(self) -> str:
        return self.case_number


class CaseWorkflowMapping(models.Model):
    """Links a case to the process instance that moves it, and keeps every hop of its work between queues."""

    mapping_id = models.BigAutoField(primary_key=True)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="workflow_mappings")
    process_instance = models.OneToOneField(ProcessInstance, on_delete=models.PROTECT, related_name="case_mapping")
    workflow_type = models.CharField(max_length=200)
    routing_history = models.JSONField(
        default=list, blank=True, help_text="List of {from_queue, to_queue, at, by, reason}."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'onecms"."case_workflow_mapping'
        ordering = ["-created_at"]
        indexes = [
            # The queues the hops reached, for "cases whose work reached a queue I supervise" (migration 0003 writes
            # it with its schema; the expression is the one cases/selectors.py filters on).
            GinIndex(
                Func(
                    F("routing_history"),
                    Value("$[*].to_queue"),
                    function="jsonb_path_query_array",
                    output_field=models.JSONField(),
                ),
                name="idx_case_mapping_hop_queues",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case} → {self.workflow_type}"


class CaseEvent(models.Model):
    """Append-only audit trail of a case: who changed what, when, with old and new values."""

    event_id = models.BigAutoField(primary_key=True)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events")
    event_type = models.CharField(max_length=40)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    old_values = models.JSONField(default=dict, blank=True)
    new_values = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'onecms"."case_events'
        ordering = ["created_at", "event_id"]
        indexes = [models.Index(fields=["case", "created_at"], name="idx_case_events_case")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.case_id}"


class SubjectRole(models.TextChoices):
    SUBJECT = "SUBJECT", "Subject"
    COMPLAINANT = "COMPLAINANT", "Complainant"
    WITNESS = "WITNESS", "Witness"


class CaseSubject(models.Model):
    """A person a case is about or hears from. Personal fields: full_name, email, phone, date_of_birth, notes.

    Look people up through cases/selectors.py: subjects_matching, never by filtering these fields directly.
    """

    subject_id = models.BigAutoField(primary_key=True)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="subjects")
    role = models.CharField(max_length=20, choices=SubjectRole.choices, default=SubjectRole.SUBJECT)
    full_name = models.CharField(max_length=300)
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'onecms"."case_subjects'
        ordering = ["case_id", "subject_id"]
        constraints = [models.CheckConstraint(condition=Q(role__in=SubjectRole.values), name="case_subject_role_valid")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} #{self.subject_id} of {self.case_id}"
