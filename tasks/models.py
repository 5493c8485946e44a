"""The workflow engine's data: definitions, process instances, tasks and their history (schema flowable)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q, Value
from django.utils import timezone
from psycopg.types.json import Json

from core.encrypted_fields import EncryptedTextField, SealedValuesJSONField
from queues.models import WorkflowQueue


class EngineStateField(models.JSONField):
    """JSON stored as PostgreSQL `json`, not `jsonb`: the engine's serialised state relies on key order, which
    jsonb does not keep (it sorts keys). Never queried into, only stored and loaded whole."""

    def db_type(self, connection):
        return "json"

    def get_db_prep_value(self, value, connection, prepared=False):
        # Sent as `json`, not as Django's default `jsonb` parameter, which would sort the keys on the way in.
        if value is None:
            return None
        return Json(value)

    def from_db_value(self, value, expression, connection):
        if value is None or not isinstance(value, str):
            return value  # psycopg already parsed `json` (order kept)
        return super().from_db_value(value, expression, connection)


class InstanceStateField(EngineStateField):
    """An instance's engine state: its task data holds sensitive form values sealed, as the engine was given them."""

    holds_sealed_values = True


MIN_PRIORITY = 0
MAX_PRIORITY = 100
DEFAULT_PRIORITY = 50


class WorkflowDefinition(models.Model):
    """One deployed version of a BPMN process. Deploying the same process_key again makes the next version."""

    workflow_id = models.BigAutoField(primary_key=True)
    process_key = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=300, blank=True)
    bpmn_xml = models.TextField()
    sla_config = models.JSONField(default=dict, blank=True)
    engine_spec = EngineStateField(
        null=True, blank=True, help_text="The parsed process spec, serialised once per version."
    )
    is_active = models.BooleanField(default=True)
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deployed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'flowable"."workflow_definitions'
        ordering = ["process_key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["process_key", "version"], name="workflow_definition_key_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="workflow_definition_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.process_key} v{self.version}"


class DecisionDefinition(models.Model):
    """One deployed version of a DMN decision table (tasks/bpmn/dmn.py); deploying the same key again makes the next
    version. Business rule tasks evaluate the latest active version, or a pinned one."""

    decision_id = models.BigAutoField(primary_key=True)
    decision_key = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=300, blank=True)
    dmn_xml = models.TextField(help_text="The DMN document the decision was deployed from.")
    table = models.JSONField(help_text="The parsed decision table: hit policy, inputs, outputs, rules.")
    is_active = models.BooleanField(default=True)
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deployed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'flowable"."decision_definitions'
        ordering = ["decision_key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["decision_key", "version"], name="decision_definition_key_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="decision_definition_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.decision_key} v{self.version}"


class ProcessStatus(models.TextChoices):
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class ProcessInstance(models.Model):
    process_instance_id = models.BigAutoField(primary_key=True)
    definition = models.ForeignKey(WorkflowDefinition, on_delete=models.PROTECT, related_name="instances")
    business_key = models.CharField(max_length=200, db_index=True)
    variables = SealedValuesJSONField(default=dict, blank=True)
    engine_state = InstanceStateField(null=True, blank=True, help_text="The engine's serialised workflow state.")
    status = models.CharField(max_length=20, choices=ProcessStatus.choices, default=ProcessStatus.RUNNING)
    sla_due_date = models.DateTimeField(null=True, blank=True)
    next_timer_due_at = models.DateTimeField(null=True, blank=True, help_text="When the engine's next timer falls due.")
    waiting_messages = ArrayField(
        models.CharField(max_length=200),
        default=list,
        db_default=Value([], output_field=ArrayField(models.CharField(max_length=200))),  # rows inserted by SQL
        blank=True,
        help_text="Names of the messages the instance waits for (catch events, receive tasks, boundary events): "
        "what POST /api/workflow/messages correlates by.",
    )
    waiting_signals = ArrayField(
        models.CharField(max_length=200),
        default=list,
        db_default=Value([], output_field=ArrayField(models.CharField(max_length=200))),  # rows inserted by SQL
        blank=True,
        help_text="Names of the signals the instance waits for: what POST /api/workflow/signals reaches.",
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # A process started by a call activity (tasks/bpmn/called_processes.py): its caller, and the call activity's
    # engine task, which completes when this instance does.
    parent_instance = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="called_instances"
    )
    parent_engine_task_id = models.UUIDField(null=True, blank=True)

    class Meta:
        db_table = 'flowable"."process_instances'
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ProcessStatus.values), name="process_status_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["COMPLETED", "CANCELLED"], ended_at__isnull=False)
                | ~Q(status__in=["COMPLETED", "CANCELLED"]),
                name="process_ended_has_end_time",
            ),
        ]
        indexes = [
            models.Index(fields=["sla_due_date"], name="process_sla_due_running", condition=Q(status="RUNNING")),
            models.Index(fields=["next_timer_due_at"], name="process_timer_due_running", condition=Q(status="RUNNING")),
            # Message correlation: the running instances waiting for a message of that name.
            GinIndex(fields=["waiting_messages"], name="process_waiting_messages", condition=Q(status="RUNNING")),
            GinIndex(fields=["waiting_signals"], name="process_waiting_signals", condition=Q(status="RUNNING")),
        ]

    def __str__(self) -> str:
        return f"{self.definition.process_key}:{self.business_key}"


class IncidentKind(models.TextChoices):
    SCRIPT_LIMIT = "SCRIPT_LIMIT", "script stopped at its CPU or memory limit"
    ENGINE_ERROR = "ENGINE_ERROR", "engine error"
    EXTERNAL_TASK_FAILED = "EXTERNAL_TASK_FAILED", "external task failed, no retries left"


class IncidentStep(models.TextChoices):
    """The step outside a request that failed, and that a retry runs again."""

    FIRE_TIMERS = "FIRE_TIMERS", "fire due timers"
    EXTERNAL_TASK = "EXTERNAL_TASK", "external task"  # a retry gives the item retries and returns it to the pool


class ProcessIncident(models.Model):
    """A step run outside a request (a beat job) failed on this instance; open until a retry succeeds.

    An instance with an open incident is left alone by the job that failed, so it does not fail on every run.
    """

    incident_id = models.BigAutoField(primary_key=True)
    process_instance = models.ForeignKey(ProcessInstance, on_delete=models.CASCADE, related_name="incidents")
    step = models.CharField(max_length=20, choices=IncidentStep.choices)
    kind = models.CharField(max_length=20, choices=IncidentKind.choices)
    element_id = models.CharField(max_length=255, blank=True, default="")
    message = models.TextField()
    external_task = models.ForeignKey(
        "ExternalTask",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="incidents",
        help_text="Step EXTERNAL_TASK: the work item whose retries ran out.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = 'flowable"."process_incidents'
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=IncidentKind.values), name="process_incident_kind_valid"),
            models.CheckConstraint(condition=Q(step__in=IncidentStep.values), name="process_incident_step_valid"),
            # One open incident of the engine's steps per instance: the job skips the instance until it is resolved.
            # An external task's incident stops only that item (parallel branches may each have one).
            models.UniqueConstraint(
                fields=["process_instance"],
                condition=Q(resolved_at__isnull=True, external_task__isnull=True),
                name="process_incident_one_open",
            ),
            models.UniqueConstraint(
                fields=["external_task"],
                condition=Q(resolved_at__isnull=True, external_task__isnull=False),
                name="process_incident_one_open_per_external_task",
            ),
            models.CheckConstraint(
                condition=Q(step="EXTERNAL_TASK", external_task__isnull=False)
                | (~Q(step="EXTERNAL_TASK") & Q(external_task__isnull=True)),
                name="process_incident_external_task_step",
            ),
        ]

    def __str__(self) -> str:
        where = f" at {self.element_id}" if self.element_id else ""
        return f"{self.get_kind_display()}{where}"


class ExternalTaskStatus(models.TextChoices):
    ACTIVE = "ACTIVE"  # in the pool, or locked by a worker (lock_expires_at in the future)
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"  # closed by the engine (a boundary event, the instance cancelled)


class ExternalTask(models.Model):
    """A serviceTask with camunda:type="external" the instance waits at, for a worker to fetch, lock and complete.

    Reached by worker accounts holding tasks.work_external_tasks, never through queues (tasks/external.py).
    Free when ACTIVE with no live lock, retries not used up (None: never failed) and no retry wait pending.
    """

    external_task_id = models.BigAutoField(primary_key=True)
    process_instance = models.ForeignKey(
        ProcessInstance, on_delete=models.PROTECT, related_name="external_tasks", db_index=False
    )
    engine_task_id = models.UUIDField(help_text="The engine's id of the serviceTask this row stands for.")
    activity_id = models.CharField(max_length=255, help_text="The serviceTask's BPMN id.")
    name = models.CharField(max_length=300, blank=True)
    topic_name = models.CharField(max_length=200)
    priority = models.IntegerField(default=0)
    status = models.CharField(max_length=20, choices=ExternalTaskStatus.choices, default=ExternalTaskStatus.ACTIVE)
    worker_id = models.CharField(max_length=255, blank=True, help_text="The worker that holds (or last held) the lock.")
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        help_text="The worker account that holds (or last held) the lock.",
    )
    lock_expires_at = models.DateTimeField(null=True, blank=True)
    retries = models.IntegerField(null=True, blank=True, help_text="None until a worker reports a failure.")
    retry_at = models.DateTimeField(null=True, blank=True, help_text="After a failure: not fetched before this.")
    error_message = models.TextField(blank=True)
    error_details = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = 'flowable"."external_tasks'
        ordering = ["-priority", "created_at"]
        permissions = [("work_external_tasks", "Can fetch, lock, complete and fail external tasks (worker account)")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ExternalTaskStatus.values), name="external_task_status_valid"
            ),
            models.CheckConstraint(condition=Q(retries__isnull=True) | Q(retries__gte=0), name="external_task_retries"),
            models.UniqueConstraint(fields=["engine_task_id"], name="external_task_engine_task_unique"),
        ]
        indexes = [
            # Fetch-and-lock: per topic, the free items in priority-then-age order, among the active ones only.
            models.Index(
                F("topic_name"),
                F("priority").desc(),
                F("created_at"),
                F("external_task_id"),
                name="idx_external_tasks_fetch",
                condition=Q(status="ACTIVE"),
            ),
            models.Index(fields=["process_instance", "status"], name="idx_external_tasks_instance"),
        ]

    def __str__(self) -> str:
        return f"#{self.external_task_id} {self.topic_name}"


class ExternalTaskEventType(models.TextChoices):
    CREATED = "CREATED"
    LOCKED = "LOCKED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    BPMN_ERROR = "BPMN_ERROR"
    LOCK_EXTENDED = "LOCK_EXTENDED"
    UNLOCKED = "UNLOCKED"
    RETRIES_SET = "RETRIES_SET"
    CANCELLED = "CANCELLED"
    REFUSED = "REFUSED"  # a call the item's state refused (another worker's lock, already completed)


class ExternalTaskHistory(models.Model):
    """Append-only events of an external task: which worker account did what, when (as task history)."""

    event_id = models.BigAutoField(primary_key=True)
    external_task = models.ForeignKey(ExternalTask, on_delete=models.PROTECT, related_name="history", db_index=False)
    event_type = models.CharField(max_length=20, choices=ExternalTaskEventType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    worker_id = models.CharField(max_length=255, blank=True)
    new_values = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'flowable"."external_task_history'
        ordering = ["created_at", "event_id"]
        verbose_name_plural = "external task history"
        indexes = [
            models.Index(fields=["external_task", "created_at"], name="idx_external_task_history_task"),
            models.Index(fields=["actor", "created_at"], name="idx_external_task_history_actor"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(event_type__in=ExternalTaskEventType.values), name="external_task_event_type_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} external #{self.external_task_id}"


class TaskStatus(models.TextChoices):
    OPEN = "OPEN"
    CLAIMED = "CLAIMED"
    COMPLETED = "COMPLETED"
    ESCALATED = "ESCALATED"
    CANCELLED = "CANCELLED"


ACTIVE_TASK_STATUSES = (TaskStatus.OPEN, TaskStatus.CLAIMED)


class WorkflowTask(models.Model):
    """A unit of human work waiting in a queue. Visibility and actions are decided by the queue, never per task."""

    task_id = models.BigAutoField(primary_key=True)
    process_instance = models.ForeignKey(
        ProcessInstance,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tasks",
        db_index=False,  # idx_workflow_tasks_instance leads with process_instance_id
    )
    engine_task_id = models.UUIDField(
        null=True, blank=True, help_text="The engine's id of the userTask this row stands for."
    )
    task_definition_key = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    queue = models.ForeignKey(
        WorkflowQueue,
        to_field="queue_name",
        db_column="queue_name",
        on_delete=models.PROTECT,
        related_name="tasks",
        db_index=False,  # idx_workflow_tasks_queue_status_priority leads with queue_name
    )
    candidate_groups = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="assigned_tasks"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="delegated_tasks",
        db_index=False,  # idx_workflow_tasks_owner: the delegated tasks only
        help_text="Who delegated the task; it returns to them when the delegate resolves it.",
    )
    delegation_state = models.CharField(
        max_length=10, blank=True, default="", choices=[("", "—"), ("PENDING", "Pending"), ("RESOLVED", "Resolved")]
    )
    status = models.CharField(max_length=20, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    priority = models.IntegerField(default=DEFAULT_PRIORITY)
    # Aging (tasks/sla/aging.py): points the job adds while the task waits in a queue that ages its tasks.
    priority_boost = models.IntegerField(
        default=0, db_default=0, editable=False, help_text="Points aging adds to the priority while the task waits."
    )
    # Claim-next's order (flowable.claim_next_task, idx_workflow_tasks_claim_open): computed by PostgreSQL whenever
    # the priority or the boost changes, so an escalation or a new task needs no code to keep it, and no claim
    # computes it.
    effective_priority = models.GeneratedField(
        expression=F("priority") + F("priority_boost"), output_field=models.IntegerField(), db_persist=True
    )
    due_date = models.DateTimeField(null=True, blank=True)
    escalation_level = models.IntegerField(default=0)
    # Kept on the task, not read from its instance, so claim-next passes over the task in its own index probe
    # (flowable.claim_next_task) without a join per probe; process_suspend / process_resume set and clear it on
    # the instance's active tasks, under the locks of both.
    suspended = models.BooleanField(
        default=False, db_default=False, help_text="Its process instance is suspended: no claim, no completion."
    )
    required_skills = ArrayField(models.SlugField(max_length=50), default=list, blank=True)
    variables = SealedValuesJSONField(default=dict, blank=True)
    form_fields = models.JSONField(default=list, blank=True, help_text="The userTask's declared form fields.")
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = 'flowable"."workflow_tasks'
        ordering = ["-priority", "created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=TaskStatus.values), name="task_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="CLAIMED") | Q(assignee__isnull=False), name="task_claimed_has_assignee"
            ),
            models.CheckConstraint(
                condition=~Q(status="COMPLETED") | Q(completed_at__isnull=False), name="task_completed_has_time"
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=MIN_PRIORITY, priority__lte=MAX_PRIORITY), name="task_priority_in_range"
            ),
            models.CheckConstraint(condition=Q(escalation_level__gte=0), name="task_escalation_level_non_negative"),
            models.CheckConstraint(condition=Q(priority_boost__gte=0), name="task_priority_boost_non_negative"),
        ]
        indexes = [
            # The seed's primary index: queue listings in priority-then-age order. task_id completes the task list's
            # key, and process_instance_id is the one other column row-level security's policies read, so the
            # list's per-queue-and-status probes read pages from the index alone (core/pagination.py).
            models.Index(
                F("queue"),
                F("status"),
                F("priority").desc(),
                F("created_at"),
                F("task_id"),
                name="idx_workflow_tasks_queue_status_priority",
                include=["process_instance"],
            ),
            # Claim path: one ordered probe per queue over OPEN tasks only, in effective priority (the priority
            # plus any aging boost), so an express lane is a range of it. process_instance_id for row-level
            # security's policies, as above: the queue page's probes and its capped count read the index alone.
            models.Index(
                F("queue"),
                F("effective_priority").desc(),
                F("created_at"),
                F("task_id"),
                name="idx_workflow_tasks_claim_open",
                condition=Q(status="OPEN"),
                include=["process_instance"],
            ),
            # SLA scans: the seed's (due_date < CURRENT_TIMESTAMP) index cannot exist (not immutable); this is its equivalent.
            models.Index(
                fields=["due_date"], name="idx_workflow_tasks_overdue", condition=Q(status__in=["OPEN", "CLAIMED"])
            ),
            models.Index(
                fields=["assignee", "due_date"],
                name="idx_workflow_tasks_assignee_active",
                condition=Q(status="CLAIMED"),
            ),
            models.Index(fields=["process_instance", "status"], name="idx_workflow_tasks_instance"),
            # Lookups by owner (a user's delegations, erasure, export, a user's deletion refused while a task names
            # them) only ever ask for one owner; the undelegated majority of tasks stays out of the index, so a
            # claim or completion writes no entry here.
            models.Index(fields=["owner"], name="idx_workflow_tasks_owner", condition=Q(owner__isnull=False)),
            # The console's task list filtered by queue, newest first: a backward walk of one queue's active tasks
            # instead of sorting them. Partial, so it stays the size of the backlog.
            models.Index(
                F("queue"),
                F("task_id").desc(),
                name="idx_workflow_tasks_queue_active",
                condition=Q(status__in=["OPEN", "CLAIMED"]),
            ),
            # The process instances with a task in given queues, from the index alone: the case list's matches
            # (cases/selectors.py: case_list).
            models.Index(fields=["queue", "process_instance"], name="idx_workflow_tasks_queue_instance"),
            # Covering, so "completed today per caseworker / per queue" reads the index alone (dashboard at 10M rows).
            models.Index(
                fields=["completed_at"],
                include=["queue", "assignee"],
                name="idx_workflow_tasks_completed",
                condition=Q(status="COMPLETED"),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.task_id} {self.name}"


class TaskEventType(models.TextChoices):
    CREATED = "CREATED"
    CLAIMED = "CLAIMED"
    RELEASED = "RELEASED"
    COMPLETED = "COMPLETED"
    REASSIGNED = "REASSIGNED"
    DELEGATED = "DELEGATED"
    RESOLVED = "RESOLVED"
    ESCALATED = "ESCALATED"
    MOVED = "MOVED"
    PRIORITY_CHANGED = "PRIORITY_CHANGED"
    CANCELLED = "CANCELLED"
    COMMENTED = "COMMENTED"
    SUSPENDED = "SUSPENDED"  # its process instance was suspended: it cannot be claimed or completed
    RESUMED = "RESUMED"
    MIGRATED = "MIGRATED"  # its process instance moved to another version of its definition


class TaskHistory(models.Model):
    """Append-only events of a task: who did what, when, with old and new values."""

    event_id = models.BigAutoField(primary_key=True)
    task = models.ForeignKey(WorkflowTask, on_delete=models.PROTECT, related_name="history", db_index=False)
    event_type = models.CharField(max_length=30, choices=TaskEventType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    via_account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        help_text="The integration account that acted on the actor's behalf (X-On-Behalf-Of), if any.",
    )
    old_values = models.JSONField(default=dict, blank=True)
    new_values = models.JSONField(default=dict, blank=True)
    comment = EncryptedTextField(blank=True)  # free text about the case
    created_at = models.DateTimeField(default=timezone.now)
    routing = models.JSONField(
        null=True,
        blank=True,
        help_text="Why the task went where it went, on the event that moved it (push routing, claim-next, a "
        "supervisor's reassignment): the candidates considered and why each was passed over "
        "(tasks/routing_explanation.py).",
    )

    class Meta:
        db_table = 'flowable"."task_history'
        ordering = ["created_at", "event_id"]
        verbose_name_plural = "task history"
        indexes = [
            models.Index(fields=["task", "created_at"], name="idx_task_history_task"),
            # Most events are a person's own, with no integration account: those rows stay out of this index, so
            # appending them (every claim) costs one index insert fewer; `via_account_id = X` still uses it.
            models.Index(
                fields=["via_account"], condition=Q(via_account__isnull=False), name="task_history_via_account"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(event_type__in=TaskEventType.values), name="task_event_type_valid")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.task_id}"


# --- Archive ------------------------------------------------------------------------------------------------
# tasks/sla/archive.py moves terminal tasks and their history into monthly partitions (migration 0006 owns the
# tables). These unmanaged models read them, so an archived task stays readable through the API.


def archived_user_reference() -> models.ForeignKey:
    """A user an archived row names; the archive tables (migration 0006) carry no foreign keys."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )


class ArchivedTask(models.Model):
    """A terminal task moved to flowable.workflow_tasks_archive: read-only, as it was when archived."""

    task_id = models.BigIntegerField(primary_key=True)  # unique: each task is archived once
    process_instance_id = models.BigIntegerField(null=True)
    engine_task_id = models.UUIDField(null=True)
    task_definition_key = models.CharField(max_length=200)
    name = models.CharField(max_length=300)
    description = models.TextField()
    queue = models.ForeignKey(
        WorkflowQueue,
        to_field="queue_name",
        db_column="queue_name",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    candidate_groups = ArrayField(models.CharField(max_length=100))
    assignee = archived_user_reference()
    owner = archived_user_reference()
    delegation_state = models.CharField(max_length=10)
    status = models.CharField(max_length=20, choices=TaskStatus.choices)
    priority = models.IntegerField()
    due_date = models.DateTimeField(null=True)
    escalation_level = models.IntegerField()
    suspended = models.BooleanField(default=False)
    required_skills = ArrayField(models.CharField(max_length=50))
    variables = SealedValuesJSONField()
    form_fields = models.JSONField()
    created_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True)
    completed_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    archived_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = 'flowable"."workflow_tasks_archive'

    def __str__(self) -> str:
        return f"archived task {self.task_id}"


class ArchivedTaskHistory(models.Model):
    """A history event of an archived task (flowable.task_history_archive)."""

    event_id = models.BigIntegerField(primary_key=True)
    task_id = models.BigIntegerField()
    event_type = models.CharField(max_length=30, choices=TaskEventType.choices)
    actor = archived_user_reference()
    via_account = archived_user_reference()
    old_values = models.JSONField()
    new_values = models.JSONField()
    comment = EncryptedTextField()
    created_at = models.DateTimeField()
    routing = models.JSONField(null=True)
    archived_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = 'flowable"."task_history_archive'
        ordering = ["created_at", "event_id"]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.task_id} (archived)"


# --- Alerts ---------------------------------------------------------------------------------------------------
# SLA breaches and queues near capacity raise alerts (tasks/sla/alerts.py); Celery delivers each to the channels
# that take its kind (tasks/sla/alerts.py: deliver_alert), keeping a record per alert and channel.

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class AlertKind(models.TextChoices):
    SLA_BREACH = "SLA_BREACH", "SLA breach"
    CAPACITY = "CAPACITY", "Queue over capacity"
    SLA_RISK = "SLA_RISK", "SLA at risk (forecast)"


class AlertSeverity(models.TextChoices):
    """PagerDuty's Events v2 severities, used for every channel."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


def all_alert_kinds() -> list[str]:
    return list(AlertKind.values)


class AlertRule(models.Model):
    """One kind of alert: whether it fires, how severe it is and (capacity) from what load. Editable in admin."""

    kind = models.CharField(max_length=20, choices=AlertKind.choices, primary_key=True)
    description = models.CharField(max_length=300)
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=10, choices=AlertSeverity.choices, default=AlertSeverity.WARNING)
    threshold_percent = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Capacity: a queue alerts when its load is over this share of max_capacity."
    )

    class Meta:
        db_table = 'flowable"."alert_rules'
        ordering = ["kind"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AlertKind.values), name="alert_rule_kind_valid"),
            models.CheckConstraint(condition=Q(severity__in=AlertSeverity.values), name="alert_rule_severity_valid"),
        ]

    def __str__(self) -> str:
        return self.get_kind_display()


class AlertChannelKind(models.TextChoices):
    SLACK = "SLACK", "Slack incoming webhook"
    TEAMS = "TEAMS", "Teams incoming webhook"
    EMAIL = "EMAIL", "Email"
    PAGERDUTY = "PAGERDUTY", "PagerDuty Events API v2"


class AlertChannel(models.Model):
    """Where alerts go. Which fields matter depends on the kind (see clean())."""

    channel_id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=AlertChannelKind.choices)
    enabled = models.BooleanField(default=True)
    alert_kinds = ArrayField(
        models.CharField(max_length=20, choices=AlertKind.choices),
        default=all_alert_kinds,
        blank=True,
        help_text="The kinds of alert this channel receives.",
    )
    webhook_url = models.URLField(max_length=500, blank=True, help_text="Slack or Teams: the incoming webhook's URL.")
    email_recipients = ArrayField(
        models.EmailField(), default=list, blank=True, help_text="Email: addresses, comma-separated."
    )
    routing_key = models.CharField(max_length=100, blank=True, help_text="PagerDuty: the integration's routing key.")
    events_url = models.URLField(
        max_length=500, default=PAGERDUTY_EVENTS_URL, help_text="PagerDuty: the Events API v2 URL."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'flowable"."alert_channels'
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AlertChannelKind.values), name="alert_channel_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self):
        from django.core.exceptions import ValidationError

        required = {
            AlertChannelKind.SLACK: ("webhook_url", self.webhook_url),
            AlertChannelKind.TEAMS: ("webhook_url", self.webhook_url),
            AlertChannelKind.EMAIL: ("email_recipients", self.email_recipients),
            AlertChannelKind.PAGERDUTY: ("routing_key", self.routing_key),
        }.get(self.kind)
        if required and not required[1]:
            raise ValidationError({required[0]: f"A {self.get_kind_display()} channel needs this."})


class Alert(models.Model):
    """One raised alert. dedupe_key makes raising idempotent: one per task and SLA level, one per queue and hour."""

    alert_id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    dedupe_key = models.CharField(max_length=200, unique=True)
    queue_name = models.CharField(max_length=100)
    # No database constraint: archival moves tasks out with plain SQL, and the alert outlives the task row.
    task = models.ForeignKey(
        WorkflowTask, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="alerts"
    )
    level = models.IntegerField(null=True, blank=True, help_text="SLA breach: the escalation level reached.")
    severity = models.CharField(max_length=10, choices=AlertSeverity.choices)
    summary = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'flowable"."alerts'
        ordering = ["-created_at", "-alert_id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AlertKind.values), name="alert_kind_valid"),
            models.CheckConstraint(condition=Q(severity__in=AlertSeverity.values), name="alert_severity_valid"),
        ]
        indexes = [models.Index(fields=["kind", "-created_at"], name="idx_alerts_kind_created")]
        # Not about alerts as such: the operations permission of the supervisor console's database health page
        # (tasks/console/database_health.py), which needs a model of this app to hang on.
        permissions = [("view_database_health", "Can view the database health page")]

    def __str__(self) -> str:
        return self.dedupe_key


class AlertDeliveryStatus(models.TextChoices):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class AlertDelivery(models.Model):
    """The record of sending one alert to one channel: every attempt counts, the last error stays."""

    delivery_id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=10, choices=AlertDeliveryStatus.choices, default=AlertDeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'flowable"."alert_deliveries'
        ordering = ["-created_at", "-delivery_id"]
        verbose_name_plural = "alert deliveries"
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="alert_delivery_once_per_channel"),
            models.CheckConstraint(
                condition=Q(status__in=AlertDeliveryStatus.values), name="alert_delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="DELIVERED") | Q(delivered_at__isnull=False), name="alert_delivered_has_time"
            ),
        ]
        indexes = [models.Index(fields=["channel", "status"], name="idx_alert_deliveries_channel")]

    def __str__(self) -> str:
        return f"{self.alert} → {self.channel.name}"


class AlertDeliveryAttemptOutcome(models.TextChoices):
    DELIVERED = "DELIVERED"
    RETRYING = "RETRYING", "Failed, will retry"
    FAILED = "FAILED"


class AlertDeliveryAttempt(models.Model):
    """One attempt to send a delivery, as it happened: append-only (tasks/sql/alert_delivery_attempts_*.sql). The
    delivery's status, attempts and last error are this log's latest state."""

    attempt_id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(AlertDelivery, on_delete=models.PROTECT, related_name="attempt_log")
    outcome = models.CharField(max_length=10, choices=AlertDeliveryAttemptOutcome.choices)
    error = models.TextField(blank=True)
    attempted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = 'flowable"."alert_delivery_attempts'
        ordering = ["attempted_at", "attempt_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=AlertDeliveryAttemptOutcome.values), name="alert_attempt_outcome_valid"
            ),
        ]
        indexes = [models.Index(fields=["delivery", "attempted_at"], name="idx_alert_attempts_delivery")]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.outcome} {self.attempted_at:%Y-%m-%d %H:%M:%S}"


class TaskRisk(models.Model):
    """The SLA-risk forecast of an active task (tasks/forecast/): written by the beat job, one row per task.

    A side table, not columns of workflow_tasks: the job rewrites every active task's forecast every few minutes,
    and an UPDATE of the task row would lock it (claim-next's SKIP LOCKED would pass the task by while the job
    holds it) and leave a dead tuple of the hot, wide row each time. Here the job replaces narrow rows nobody
    locks. No foreign-key constraint: archival moves terminal tasks out by SQL; the job deletes stale forecasts.
    """

    task = models.OneToOneField(
        WorkflowTask,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="risk",
    )
    queue_name = models.CharField(max_length=100)
    breach_probability = models.FloatField()
    expected_completion_at = models.DateTimeField(null=True)
    computed_at = models.DateTimeField()

    class Meta:
        db_table = 'flowable"."task_risks'
        # The job's per-queue sweep of forecasts whose task left the queue (tasks/forecast/services.py: STALE_SQL):
        # a merge of this index with idx_workflow_tasks_queue_active, not a scan of every queue's forecasts.
        indexes = [models.Index(fields=["queue_name", "task"], name="idx_task_risks_queue")]

    def __str__(self) -> str:
        return f"#{self.task_id} {self.breach_probability:.0%}"


# --- In-app notifications ---------------------------------------------------------------------------------------
# What happened that one user should know: a task pushed to them, their task escalated or at risk, an SLA breach or
# a queue over capacity in a queue they supervise (tasks/notifications.py). Short-lived: a daily job deletes them.


class NotificationKind(models.TextChoices):
    TASK_ASSIGNED = "TASK_ASSIGNED", "Task assigned to you"
    TASK_ESCALATED = "TASK_ESCALATED", "Your task escalated"
    TASK_AT_RISK = "TASK_AT_RISK", "Your task is at risk"
    SLA_RISK = "SLA_RISK", "SLA at risk"
    SLA_BREACH = "SLA_BREACH", "SLA breach"
    CAPACITY = "CAPACITY", "Queue over capacity"


class Notification(models.Model):
    """One notice to one user. Row-level security shows a user only their own (tasks/sql/notifications_*.sql)."""

    notification_id = models.BigAutoField(primary_key=True)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    text = models.CharField(max_length=500)
    link = models.CharField(max_length=300, blank=True, help_text="A path on this site that the notice is about.")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = 'flowable"."notifications'
        ordering = ["-created_at", "-notification_id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=NotificationKind.values), name="notification_kind_valid"),
            models.CheckConstraint(
                condition=Q(link="") | Q(link__startswith="/"), name="notification_link_on_this_site"
            ),
        ]
        indexes = [
            # The list page and the API: a user's newest first.
            models.Index(fields=["recipient", "-created_at"], name="idx_notifications_recipient"),
            # The bell's count on every page: a user's unread ones only.
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="idx_notifications_unread"),
            # The purge: oldest first.
            models.Index(fields=["created_at"], name="idx_notifications_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.recipient_id}"


# --- Staffing what-if -------------------------------------------------------------------------------------------
# A supervisor's question about one queue ("with N more caseworkers over the next two weeks?") and the simulation's
# answer (tasks/forecast/whatif.py), run by a Celery job (tasks/jobs.py: run_staffing_whatif) that reports its
# progress on the row. Row-level security: the supervisors of the queue and the system (tasks/sql/whatif_runs_*.sql).


class WhatIfStatus(models.TextChoices):
    QUEUED = "QUEUED", "Queued"
    RUNNING = "RUNNING", "Running"
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed"


class WhatIfRun(models.Model):
    run_id = models.BigAutoField(primary_key=True)
    # A name, not a foreign key, as on task_risks: the policies key rows by it, and a run outlives nothing it points at.
    queue_name = models.CharField(max_length=100)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    parameters = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=WhatIfStatus.choices, default=WhatIfStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Replications done, in percent.")
    result = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = 'flowable"."whatif_runs'
        constraints = [
            models.CheckConstraint(condition=Q(status__in=WhatIfStatus.values), name="whatif_run_status_valid"),
            models.CheckConstraint(condition=Q(progress__lte=100), name="whatif_run_progress_percent"),
        ]
        # The queue's page lists its runs, newest first.
        indexes = [models.Index(fields=["queue_name", "-created_at"], name="idx_whatif_runs_queue")]

    def __str__(self) -> str:
        return f"what-if #{self.run_id} {self.queue_name} {self.status}"
