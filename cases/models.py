"""Cases (OneCMS): the business record an investigation is about, linked to the workflow that moves it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Func, Q, Value
from django.utils import timezone

from core.encrypted_fields import (
    EncryptedCharField,
    EncryptedDateField,
    EncryptedEmailField,
    EncryptedKeysJSONField,
    EncryptedTextField,
    KeyedHashField,
)
from core.encryption import normalise_email, normalise_name
from tasks.models import ProcessInstance

from .privacy.redaction import REDACTED_TITLE


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
    case_type = models.CharField(
        max_length=200,
        blank=True,
        db_default="",
        help_text="The process key the case was opened with; retention policies apply per case type.",
    )
    # Sealed like the description: a title often names the person ("Expenses of J. Smith"). Not searchable; the
    # redaction marker stays clear so the integrity check can tell a redacted case in SQL.
    title = EncryptedCharField(max_length=300, clear_values=[REDACTED_TITLE])
    description = EncryptedTextField(blank=True)
    # Each allegation's description is sealed; its type and date stay clear: they route the workflow and are
    # what reports count, and they name nobody.
    allegations = EncryptedKeysJSONField(
        default=list, blank=True, encrypted_keys=["description"], help_text="List of {type, description, date}."
    )
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
    redacted_at = models.DateTimeField(
        null=True, blank=True, help_text="When a retention policy redacted the case's personal data and free text."
    )

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
        indexes = [
            models.Index(fields=["assigned_to", "status"], name="idx_cases_assignee_status"),
            # Retention: the closed cases of a type, oldest closure first.
            models.Index(
                fields=["case_type", "closed_at"], condition=Q(status="CLOSED"), name="idx_cases_closed_by_type"
            ),
        ]

    def __str__(self) -> str:
        return self.case_number


class CaseWorkflowMapping(models.Model):
    """Links a case to the process instance that moves it, and keeps every hop of its work between queues."""

    mapping_id = models.BigAutoField(primary_key=True)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="workflow_mappings")
    process_instance = models.OneToOneField(ProcessInstance, on_delete=models.PROTECT, related_name="case_mapping")
    workflow_type = models.CharField(max_length=200)
    # Each hop's reason is sealed (a supervisor types why the work moved); queues, time and actor stay clear: the
    # supervised-case filter reads the queues. Hops are appended in SQL (cases/services.py), so the ones there keep
    # their ciphertext, as the append-only trigger requires.
    routing_history = EncryptedKeysJSONField(
        default=list, blank=True, encrypted_keys=["reason"], help_text="List of {from_queue, to_queue, at, by, reason}."
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
            # The cases of process instances, from the index alone: the case list's matches (cases/selectors.py).
            models.Index(fields=["process_instance"], include=["case"], name="idx_case_mapping_instance_case"),
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
    # The case's title, where an event copies it (OPENED), is sealed as on the case.
    old_values = EncryptedKeysJSONField(default=dict, blank=True, encrypted_keys=["title"])
    new_values = EncryptedKeysJSONField(default=dict, blank=True, encrypted_keys=["title"])
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
    """A person a case is about or hears from. The personal fields are sealed; keyed hashes of the normalised
    email and name find a person's rows by exact match (cases/selectors.py: case_subjects_matching)."""

    subject_id = models.BigAutoField(primary_key=True)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="subjects")
    role = models.CharField(max_length=20, choices=SubjectRole.choices)
    full_name = EncryptedCharField(max_length=300)
    email = EncryptedEmailField(max_length=254, blank=True)
    phone = EncryptedCharField(max_length=50, blank=True)
    date_of_birth = EncryptedDateField(null=True, blank=True)
    notes = EncryptedTextField(blank=True)
    email_hash = KeyedHashField(source="email", normaliser=normalise_email, db_index=True)
    name_hash = KeyedHashField(source="full_name", normaliser=normalise_name, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'onecms"."case_subjects'
        ordering = ["case", "subject_id"]
        constraints = [models.CheckConstraint(condition=Q(role__in=SubjectRole.values), name="case_subject_role_valid")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} #{self.subject_id} of {self.case_id}"


# --- Retention ----------------------------------------------------------------------------------------------------
# cases/privacy/retention.py applies the policies: a closed case past its type's horizon is redacted or deleted.


class RetentionAction(models.TextChoices):
    REDACT = "REDACT", "Redact personal data and free text, keep the skeleton"
    DELETE = "DELETE", "Delete the case and its workflow, leave a tombstone"


MAX_RETENTION_YEARS = 100


class RetentionPolicy(models.Model):
    """How long closed cases of one type are kept, and what happens to them after that. Edited in admin."""

    policy_id = models.BigAutoField(primary_key=True)
    case_type = models.CharField(max_length=200, unique=True, help_text="A process key cases are opened with.")
    keep_years_after_closure = models.PositiveSmallIntegerField(
        help_text=f"Whole years a closed case is kept after its closure (1 to {MAX_RETENTION_YEARS})."
    )
    action = models.CharField(max_length=10, choices=RetentionAction.choices, default=RetentionAction.REDACT)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True, help_text="Why this period: the rule or agreement it follows.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = 'onecms"."retention_policies'
        ordering = ["case_type"]
        verbose_name_plural = "retention policies"
        constraints = [
            models.CheckConstraint(condition=Q(action__in=RetentionAction.values), name="retention_action_valid"),
            models.CheckConstraint(
                condition=Q(keep_years_after_closure__gte=1, keep_years_after_closure__lte=MAX_RETENTION_YEARS),
                name="retention_years_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_type}: {self.get_action_display().split(' ')[0].lower()} after {self.keep_years_after_closure} years"


class CaseTombstone(models.Model):
    """What is left of a case a retention policy deleted: its number, type, dates and counts; no personal data."""

    tombstone_id = models.BigAutoField(primary_key=True)
    case_id = models.BigIntegerField(unique=True, help_text="The deleted case's id.")
    case_number = models.CharField(max_length=40, unique=True)
    case_type = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True)
    deleted_at = models.DateTimeField(default=timezone.now)
    # PROTECT: tombstones are append-only, so deleting their policy cannot null them; disable the policy instead.
    policy = models.ForeignKey(RetentionPolicy, null=True, on_delete=models.PROTECT, related_name="tombstones")
    policy_terms = models.JSONField(
        default=dict, help_text="The policy as applied: case_type, keep_years_after_closure, action."
    )
    deleted_rows = models.JSONField(default=dict, help_text="Rows deleted with the case, per table.")

    class Meta:
        db_table = 'onecms"."case_tombstones'
        ordering = ["-deleted_at", "-tombstone_id"]

    def __str__(self) -> str:
        return f"{self.case_number} (deleted {self.deleted_at:%Y-%m-%d})"
