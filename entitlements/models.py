"""Who works where: departments, users, skills, workflow roles, time-bound role assignments, security audit."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from knox.models import AbstractAuthToken


class Capability(models.TextChoices):
    """What a role lets its holders do on a queue."""

    VIEW = "view", "View tasks"
    WORK = "work", "Claim and complete tasks"
    SUPERVISE = "supervise", "Supervise (reassign, escalate, see all)"
    DEPLOY = "deploy", "Deploy workflow definitions"


class Right(models.TextChoices):
    """What a role lets its holders do beyond queues. Held only through a role assignment in force."""

    DEPLOY_WORKFLOWS = "deploy_workflows", "Deploy workflow definitions (also needs deploy on their queues)"
    START_PROCESSES = "start_processes", "Start processes that have no user task to check against"


class Department(models.Model):
    department_id = models.BigAutoField(primary_key=True)
    dept_code = models.SlugField(max_length=50, unique=True)
    dept_name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'entitlements"."departments'
        ordering = ["dept_name"]
        constraints = [
            models.CheckConstraint(condition=~Q(parent=models.F("department_id")), name="department_not_own_parent")
        ]

    def __str__(self) -> str:
        return self.dept_name


class Skill(models.Model):
    skill_id = models.BigAutoField(primary_key=True)
    skill_code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        db_table = 'entitlements"."skills'
        ordering = ["skill_code"]

    def __str__(self) -> str:
        return self.skill_code


class User(AbstractUser):
    """A person or a service account. Identity only; what it may do comes from role assignments."""

    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    skills = models.ManyToManyField(Skill, blank=True, related_name="users", db_table='entitlements"."user_skills')
    max_concurrent_tasks = models.PositiveIntegerField(
        default=10, help_text="Routing pushes no more CLAIMED tasks than this to the user."
    )
    is_service_account = models.BooleanField(
        default=False, help_text="An integration that calls the API, not a person."
    )
    # Act-as scope: with entitlements.act_on_behalf, whom this account may name in X-On-Behalf-Of.
    act_as_departments = models.ManyToManyField(
        Department,
        blank=True,
        related_name="+",
        db_table='entitlements"."user_act_as_departments',
        help_text="Acts for users of these departments and of their child departments.",
    )
    act_as_roles = models.ManyToManyField(
        "WorkflowRole",
        blank=True,
        related_name="+",
        db_table='entitlements"."user_act_as_roles',
        help_text="Acts for users holding one of these roles now.",
    )
    act_as_staff = models.BooleanField(
        default=False, help_text="May also act for staff and superusers inside the scope (never without this)."
    )

    class Meta(AbstractUser.Meta):
        db_table = 'entitlements"."users'
        swappable = "AUTH_USER_MODEL"
        permissions = [("act_on_behalf", "Can act on behalf of other users (X-On-Behalf-Of)")]
        constraints = [
            models.CheckConstraint(condition=Q(max_concurrent_tasks__gte=0), name="user_capacity_non_negative")
        ]


class WorkflowRole(models.Model):
    """A named bundle of capabilities on queues. Each role is backed by a Django group holding the queue permissions."""

    role_id = models.BigAutoField(primary_key=True)
    role_code = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    queue_names = ArrayField(
        models.CharField(max_length=100), default=list, blank=True, help_text="Queues this role applies to."
    )
    department = models.ForeignKey(
        Department,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="roles",
        help_text="If set, the role also applies to every queue of this department and of its child departments.",
    )
    permissions = models.JSONField(
        default=list,
        blank=True,
        help_text='Capabilities granted on those queues, e.g. ["view", "work"], and rights such as "deploy_workflows".',
    )
    group = models.OneToOneField(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="workflow_role")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'entitlements"."workflow_roles'
        ordering = ["role_code"]

    def __str__(self) -> str:
        return self.role_code


class UserRoleAssignment(models.Model):
    """A user holds a role from valid_from until valid_until (open-ended when empty). Checked at request time."""

    assignment_id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_assignments")
    role = models.ForeignKey(WorkflowRole, on_delete=models.CASCADE, related_name="assignments")
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    is_temporary_escalation = models.BooleanField(default=False)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'entitlements"."user_role_assignments'
        ordering = ["-valid_from"]
        indexes = [models.Index(fields=["user", "valid_from", "valid_until"], name="role_assign_user_window")]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("valid_from")),
                name="role_assignment_window_ordered",
            ),
            models.CheckConstraint(
                condition=Q(is_temporary_escalation=False) | (Q(valid_until__isnull=False) & ~Q(reason="")),
                name="temporary_escalation_has_end_and_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.role}"

    def is_active_at(self, moment) -> bool:
        return (
            self.revoked_at is None
            and self.valid_from <= moment
            and (self.valid_until is None or moment < self.valid_until)
        )


class SecurityEventType(models.TextChoices):
    LOGIN_SUCCESS = "LOGIN_SUCCESS"
    LOGIN_FAILURE = "LOGIN_FAILURE"
    LOGOUT = "LOGOUT"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    ROLE_GRANTED = "ROLE_GRANTED"
    ROLE_REVOKED = "ROLE_REVOKED"
    ACT_AS = "ACT_AS"
    TOKEN_CREATED = "TOKEN_CREATED"
    TOKEN_REVOKED = "TOKEN_REVOKED"
    LOGIN_LOCKED_OUT = "LOGIN_LOCKED_OUT"
    PRIVILEGE_CHANGED = "PRIVILEGE_CHANGED"
    WORKFLOW_DEPLOYED = "WORKFLOW_DEPLOYED"
    PERSONAL_DATA_ERASED = "PERSONAL_DATA_ERASED"
    PERSONAL_DATA_EXPORTED = "PERSONAL_DATA_EXPORTED"


class SecurityEvent(models.Model):
    """Append-only security audit: its grants and triggers refuse UPDATE, DELETE and TRUNCATE
    (entitlements/sql/security_events_append_only.sql, core/db_roles.py)."""

    Type = SecurityEventType

    event_id = models.BigAutoField(primary_key=True)
    event_type = models.CharField(max_length=40, choices=Type.choices)
    # No foreign-key constraint: audit rows outlive users and must never be updated by ON DELETE SET NULL.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    on_behalf_of_username = models.CharField(max_length=150, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = 'entitlements"."security_events'
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(event_type__in=SecurityEventType.values), name="security_event_type_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.event_type} {self.actor_username}"


class ApiToken(AbstractAuthToken):
    """An API token (`Authorization: Token <key>`). django-rest-knox's model keeps a SHA-512 digest of the key,
    never the key (shown once, when issued), and its expiry; we add a name, a read-only scope, who issued it and
    when it was last used (written at most once a minute, see entitlements.authentication)."""

    name = models.CharField(max_length=100, blank=True)
    read_only = models.BooleanField(default=False, help_text="Only GET, HEAD and OPTIONS requests.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = 'entitlements"."api_tokens'
        ordering = ["-created"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name or 'API token'} of {self.user}"


class AuthFailureTally(models.Model):
    """How many authentications failed from one address in one audit window (AUTH_FAILURE_AUDIT_WINDOW_SECONDS).

    The security audit is append-only and keeps only the first failure of each address and window; this counts
    them all, so a flood of bad tokens or passwords is recorded without growing the audit by a row a request.
    `throttled` counts requests refused with 429 before their credentials were even checked.
    """

    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    window_start = models.DateTimeField()
    failures = models.PositiveIntegerField(default=0)
    throttled = models.PositiveIntegerField(default=0)
    last_username = models.CharField(max_length=150, blank=True)
    last_path = models.CharField(max_length=500, blank=True)
    last_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'entitlements"."auth_failure_tallies'
        ordering = ["-window_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["remote_addr", "window_start"],
                name="auth_failure_tally_per_address_window",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.remote_addr or '?'} from {self.window_start:%Y-%m-%d %H:%M}: {self.failures} failed"


class DetailReadChannel(models.TextChoices):
    PAGE = "page", "Caseworker page"
    API = "api", "API"
    ADMIN = "admin", "Supervisor console"


class DetailReadOutcome(models.TextChoices):
    GRANTED = "granted", "Shown"
    DENIED = "denied", "Refused (outside the reader's queues)"


class DetailReadObject(models.TextChoices):
    CASE = "case", "Case"
    TASK = "task", "Task"


# The identity column's own sequence: the database fills access_id on insert (Django sends DEFAULT and reads the
# value back in the INSERT's RETURNING). Stated here so the model says what the database does.
ACCESS_AUDIT_ID_DEFAULT = models.Func(
    template="nextval('entitlements.access_audit_access_id_seq'::regclass)", output_field=models.BigIntegerField()
)


class AccessAuditEntry(models.Model):
    """One read of a case or task detail (page, API, admin), or a refused attempt at one: the access audit.

    Written by entitlements.detail_reads, one INSERT per read; never changed. The table is partitioned by month
    on read_at (migration 0011, entitlements/sql/ensure_access_audit_partitions.sql), so its key must hold
    read_at too. Readers are kept by id only (no username copies): the audit outlives the user row, and erasing a
    person's name from the users table erases it from here as well.
    """

    Channel = DetailReadChannel
    Outcome = DetailReadOutcome
    Object = DetailReadObject

    pk = models.CompositePrimaryKey("access_id", "read_at")
    access_id = models.BigIntegerField(db_default=ACCESS_AUDIT_ID_DEFAULT, editable=False)
    read_at = models.DateTimeField(default=timezone.now)
    # The user whose access was used: the person, or the user an integration acted for (X-On-Behalf-Of).
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    # The authenticated account when it acted for `reader`; empty when the reader authenticated themselves.
    via_account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    object_type = models.CharField(max_length=10, choices=DetailReadObject.choices)
    object_id = models.BigIntegerField()
    # The case number, or the business key of a task's process instance, as it was when read.
    object_label = models.CharField(max_length=200, blank=True, default="")
    channel = models.CharField(max_length=10, choices=DetailReadChannel.choices)
    outcome = models.CharField(max_length=10, choices=DetailReadOutcome.choices, default=DetailReadOutcome.GRANTED)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    remote_addr = models.GenericIPAddressField(null=True)

    class Meta:
        db_table = 'entitlements"."access_audit'
        verbose_name = "access audit entry"
        verbose_name_plural = "access audit"
        ordering = ["-read_at", "-access_id"]
        indexes = [
            # Who looked at this case or task, newest first.
            models.Index(fields=["object_type", "object_id", "-read_at"], name="access_audit_object"),
            # What this person read (right of access, investigations of an account).
            models.Index(fields=["reader", "-read_at"], name="access_audit_reader"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(object_type__in=DetailReadObject.values), name="access_audit_object_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=DetailReadChannel.values), name="access_audit_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=DetailReadOutcome.values), name="access_audit_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.read_at:%Y-%m-%d %H:%M:%S} {self.object_type} {self.object_id} {self.channel} {self.outcome}"
