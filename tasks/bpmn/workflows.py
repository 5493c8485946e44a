"""Writes of workflow definitions and process instances: deploy, start, advance on completion, timers, suspend.

The engine (tasks/bpmn/engine.py) computes; these services lock rows, store its state and turn its ready userTasks
into queue tasks, in one transaction each. Lock order: process instance, then tasks, then queues.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, WorkflowError
from entitlements.access import holds_right, queues_for
from entitlements.models import Capability, Right, SecurityEvent
from entitlements.row_scope import acting_for_user, system_scope
from entitlements.services import security_event_record
from queues.models import WorkflowQueue
from tasks import signals
from tasks.external.items import external_tasks_for_update, external_tasks_sync, return_to_pool
from tasks.locks import (
    definitions_for_update,
    incidents_for_update,
    process_instances_for_update,
    task_queues_lock,
    tasks_for_update,
)
from tasks.models import (
    IncidentKind,
    IncidentStep,
    ProcessIncident,
    ProcessInstance,
    ProcessStatus,
    TaskEventType,
    TaskStatus,
    WorkflowDefinition,
    WorkflowTask,
)
from tasks.services import history_batched, task_close, task_history_append, task_insert

from . import called_processes, decisions, engine
from .forms import refuse_sealed_input, seal_sensitive, sensitive_names

MAX_BPMN_BYTES = 2_000_000
# Definition versions whose spec a process keeps restored (definition_runtime); a deployment runs a few.
DEFINITION_VERSIONS_KEPT = 64
logger = logging.getLogger(__name__)


def _engine_error(exc: engine.EngineError) -> WorkflowError:
    where = []
    if exc.element_id:
        where.append(f"element {exc.element_id}")
    line = getattr(exc, "line", None)
    if line:
        where.append(f"line {line}")
    detail = f"{exc.detail} ({', '.join(where)})" if where else exc.detail
    if isinstance(exc, engine.ScriptLimitExceeded):
        # The model, not the request, is at fault; nothing was applied and the same call would fail again.
        return Conflict(detail, code="script_limit_exceeded")
    fields = getattr(exc, "field_errors", None)
    if fields:
        return InvalidInput(detail, code="invalid_variables", fields={k: [v] for k, v in fields.items()})
    return InvalidInput(detail, code="invalid_bpmn", fields={"bpmn_xml": [detail]})


def definition_sensitive_names(definition: WorkflowDefinition) -> set[str]:
    """Every variable a form of the definition marks sensitive: sealed wherever it enters the engine."""
    return _sensitive_names_of(definition.engine_spec or {})


def _sensitive_names_of(spec: dict) -> set[str]:
    user_tasks = spec.get("user_tasks", {})
    return {f["id"] for task in user_tasks.values() for f in task.get("form_fields", []) if f.get("sensitive")}


@dataclass(frozen=True)
class DefinitionRuntime:
    """What running instances of one definition version needs, with its spec restored for the engine."""

    definition_id: int
    process_key: str
    version: int
    sla_config: dict
    spec: engine.LoadedSpec
    sensitive_names: frozenset[str]


@functools.lru_cache(maxsize=DEFINITION_VERSIONS_KEPT)
def definition_runtime(definition_id: int) -> DefinitionRuntime:
    """A definition version as the engine runs it, read and restored once per process (one query on a miss).

    Kept by id without any check: a deployed version never changes (a new deploy is a new row, a new id), only
    whether it is active, which is not kept here. Shared by every thread: nothing in it is written after this.
    """
    definition = WorkflowDefinition.objects.only("process_key", "version", "sla_config", "engine_spec").get(
        pk=definition_id
    )
    spec = definition.engine_spec or {}
    return DefinitionRuntime(
        definition_id=definition.pk,
        process_key=definition.process_key,
        version=definition.version,
        sla_config=definition.sla_config,
        spec=engine.load_spec(spec),
        sensitive_names=frozenset(_sensitive_names_of(spec)),
    )


def _form_fields(fields) -> list[dict]:
    return [
        {
            "id": f.id,
            "label": f.label,
            "type": f.type,
            "required": f.required,
            "values": [{"id": v.id, "name": v.name} for v in f.enum_values],
            "sensitive": f.sensitive,
        }
        for f in fields
    ]


@dataclass(frozen=True)
class Deployment:
    definition: WorkflowDefinition
    created: bool  # False: the version processes start on already had this model and SLA configuration


@transaction.atomic
def definition_deploy(*, user, bpmn_xml: str, sla_config: dict | None = None) -> WorkflowDefinition:
    """Validate a BPMN 2.0 model and store it as the next version of its process key.

    The deployer needs the deploy_workflows right (through a role) and the deploy capability on every queue the
    model routes to; the queues must exist. Each deploy is a security event naming the version it replaced.
    """
    parsed, sla_config = _deploy_checked(user=user, bpmn_xml=bpmn_xml, sla_config=sla_config)
    return _definition_store(user=user, parsed=parsed, bpmn_xml=bpmn_xml, sla_config=sla_config)


@transaction.atomic
def definition_deploy_if_changed(*, user, bpmn_xml: str, sla_config: dict | None = None) -> Deployment:
    """definition_deploy, unless the version processes of the key start on (the latest active one) already has this
    model, character for character, and this SLA configuration: then that version, and nothing is written.

    Deploying a file again (a script, a CI step) is not a new version. The checks are the same either way, so an
    answer never tells someone who may not deploy which model is live.
    """
    parsed, sla_config = _deploy_checked(user=user, bpmn_xml=bpmn_xml, sla_config=sla_config)
    definitions_for_update().filter(process_key=parsed.process_key).values("pk").first()
    current = (
        WorkflowDefinition.objects.filter(process_key=parsed.process_key, is_active=True).order_by("-version").first()
    )
    if current is not None and current.bpmn_xml == bpmn_xml and current.sla_config == sla_config:
        return Deployment(definition=current, created=False)
    definition = _definition_store(user=user, parsed=parsed, bpmn_xml=bpmn_xml, sla_config=sla_config)
    return Deployment(definition=definition, created=True)


def _deploy_checked(*, user, bpmn_xml: str, sla_config: dict | None) -> tuple[engine.ParsedDefinition, dict]:
    """The parsed model and the deployable SLA configuration, once the deployer and the model pass every check."""
    if not holds_right(user=user, right=Right.DEPLOY_WORKFLOWS):
        raise PermissionDenied(
            "you may not deploy workflow definitions: no role of yours grants deploy_workflows", code="deploy_refused"
        )
    if not isinstance(bpmn_xml, str) or not bpmn_xml.strip():
        raise InvalidInput("bpmn_xml is required", fields={"bpmn_xml": ["This field is required."]})
    if len(bpmn_xml.encode()) > MAX_BPMN_BYTES:
        raise InvalidInput("the model is too large", fields={"bpmn_xml": [f"At most {MAX_BPMN_BYTES} bytes."]})
    sla_config = sla_config_validate(sla_config)
    try:
        parsed = engine.parse_definition(bpmn_xml=bpmn_xml)
    except engine.EngineError as exc:
        raise _engine_error(exc) from exc
    called_processes.check_called_deployed(parsed)
    decisions.check_decisions_deployed(parsed)
    known = set(WorkflowQueue.objects.filter(queue_name__in=parsed.queue_names).values_list("queue_name", flat=True))
    missing = sorted(set(parsed.queue_names) - known)
    if missing:
        raise InvalidInput(
            f"the model routes to queues that do not exist: {', '.join(missing)}",
            code="unknown_queue",
            fields={"bpmn_xml": [f"Unknown queues: {', '.join(missing)}."]},
        )
    deployable = set(
        queues_for(user=user, capability=Capability.DEPLOY)
        .filter(queue_name__in=parsed.queue_names)
        .values_list("queue_name", flat=True)
    )
    refused = sorted(set(parsed.queue_names) - deployable)
    if refused:
        raise PermissionDenied(
            f"you may not deploy workflows that route to: {', '.join(refused)}", code="deploy_refused"
        )
    return parsed, sla_config


def _definition_store(*, user, parsed: engine.ParsedDefinition, bpmn_xml: str, sla_config: dict) -> WorkflowDefinition:
    # Serialise concurrent deploys of one process key; the unique constraint is the last word.
    definitions_for_update().filter(process_key=parsed.process_key).values("pk").first()
    latest = WorkflowDefinition.objects.filter(process_key=parsed.process_key).aggregate(v=Max("version"))["v"] or 0
    try:
        with transaction.atomic():
            definition = WorkflowDefinition.objects.create(
                process_key=parsed.process_key,
                version=latest + 1,
                name=parsed.name,
                bpmn_xml=bpmn_xml,
                sla_config=sla_config,
                engine_spec=parsed.spec,
                deployed_by=user,
            )
    except IntegrityError:
        raise Conflict(f"{parsed.process_key} was deployed at the same moment; try again", code="deploy_race") from None
    security_event_record(
        event_type=SecurityEvent.Type.WORKFLOW_DEPLOYED,
        actor=user,
        details={
            "process_key": definition.process_key,
            "version": definition.version,
            "replaced_version": latest or None,
            "deployer": user.get_username(),
            "definition_id": definition.pk,
            "queues": parsed.queue_names,
        },
    )
    return definition


# sla_config: {"tasks": {task_key: hours}, "priority_hours": {threshold: hours}}. Hours are business hours.
SLA_CONFIG_SECTIONS = ("tasks", "priority_hours")
MAX_SLA_HOURS = 24 * 365 * 5


def _sla_hours_problem(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a number of hours"
    if not math.isfinite(value) or value <= 0 or value > MAX_SLA_HOURS:
        return f"must be more than 0 and at most {MAX_SLA_HOURS} hours"
    return None


def _priority_threshold_problem(key: str) -> str | None:
    if not re.fullmatch(r"\d{1,3}", key) or not engine.MIN_PRIORITY <= int(key) <= engine.MAX_PRIORITY:
        return f"must be a whole priority from {engine.MIN_PRIORITY} to {engine.MAX_PRIORITY}"
    return None


def sla_config_problems(config) -> list[str]:
    """Every way `config` differs from the sla_config shape, as 'path: message' lines (empty when valid)."""
    if not isinstance(config, dict):
        return ["must be an object with the keys tasks and/or priority_hours"]
    problems = [
        f"{key}: unknown key (allowed: {', '.join(SLA_CONFIG_SECTIONS)})"
        for key in config
        if key not in SLA_CONFIG_SECTIONS
    ]
    for section in SLA_CONFIG_SECTIONS:
        entries = config.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            problems.append(f"{section}: must be an object")
            continue
        for key, hours in entries.items():
            if section == "priority_hours" and (problem := _priority_threshold_problem(key)):
                problems.append(f"{section}.{key}: the key {problem}")
            elif section == "tasks" and not key.strip():
                problems.append(f"{section}: a task key must not be blank")
            if problem := _sla_hours_problem(hours):
                problems.append(f"{section}.{key}: {problem}")
    return problems


def sla_config_validate(config) -> dict:
    """The deployable form of `config` (None means {}), or InvalidInput naming each bad entry under `sla_config`."""
    if config is None:
        return {}
    problems = sla_config_problems(config)
    if problems:
        raise InvalidInput(f"sla_config: {problems[0]}", code="invalid_sla_config", fields={"sla_config": problems})
    return config


def _sla_hours(definition: DefinitionRuntime, ready: engine.ReadyUserTask, priority: int) -> float | None:
    """The definition's sla_config first (priority thresholds, then the task's key), then the model's slaHours.

    A config stored before deploys were validated may still be malformed; its bad entries are skipped (and
    logged) so that intake keeps working rather than failing every new case."""
    config = definition.sla_config if isinstance(definition.sla_config, dict) else {}
    if problems := sla_config_problems(config):
        logger.warning(
            "definition %s v%s has an invalid sla_config, bad entries ignored: %s",
            definition.process_key,
            definition.version,
            "; ".join(problems),
        )
    thresholds = config.get("priority_hours") if isinstance(config.get("priority_hours"), dict) else {}
    by_priority = sorted(
        (
            (int(k), float(v))
            for k, v in thresholds.items()
            if _priority_threshold_problem(k) is None and _sla_hours_problem(v) is None
        ),
        reverse=True,
    )
    for threshold, hours in by_priority:
        if priority >= threshold:
            return hours
    task_hours = (config.get("tasks") if isinstance(config.get("tasks"), dict) else {}).get(ready.task_definition_key)
    if task_hours is not None and _sla_hours_problem(task_hours) is None:
        return float(task_hours)
    return ready.sla_hours


def _open_tasks(
    instance: ProcessInstance, run: engine.EngineRun, *, user, via_account, raise_call_errors: bool = False
) -> list[WorkflowTask]:
    """Create queue tasks for the userTasks the engine opened, and close the ones it closed; start and cancel the
    processes its call activities run (called_processes.py); broadcast the signals it threw (messages.py).

    The tasks to close, and then their queues, are locked before any new task locks a queue (tasks/locks.py).
    """
    definition = definition_runtime(instance.definition_id)
    closing = []
    if run.closed_task_ids:
        closing = list(
            tasks_for_update(
                WorkflowTask.objects.filter(
                    process_instance=instance, engine_task_id__in=run.closed_task_ids, status__in=["OPEN", "CLAIMED"]
                )
            )
        )
        task_queues_lock(closing)
    created = []
    opened = set(run.opened_task_ids)
    for ready in run.ready_user_tasks:
        if ready.engine_task_id not in opened:
            continue
        priority = ready.priority if ready.priority is not None else 50
        queue = WorkflowQueue.objects.get(queue_name=ready.queue_name)
        created.append(
            task_insert(
                queue=queue,
                name=ready.name,
                user=user,
                via_account=via_account,
                description=ready.documentation,
                priority=priority,
                sla_hours=_sla_hours(definition, ready, priority),
                required_skills=ready.required_skills,
                candidate_groups=ready.candidate_groups,
                form_fields=_form_fields(ready.form_fields),
                process_instance=instance,
                engine_task_id=ready.engine_task_id,
                task_definition_key=ready.task_definition_key,
                variables=ready.instance_variables,  # a multi-instance task's element variable and loopCounter
            )
        )
    for task in closing:
        # A multi-instance loop done by its completion condition no longer needs its open instances: cancelled,
        # not escalated into what comes next.
        escalated = created and str(task.engine_task_id) not in run.loop_done_task_ids
        task_close(
            task,
            status=TaskStatus.ESCALATED if escalated else TaskStatus.CANCELLED,
            user=user,
            reason="closed by the workflow",
        )
    for task in created:
        signals.process_task_opened.send(sender=ProcessInstance, instance=instance, task=task, user=user)
    external_tasks_sync(instance, run, user=user)
    if definition.spec.spec.get("call_activities") and (run.ready_calls or run.closed_task_ids):
        called_processes.calls_follow(instance, run, user=user, via_account=via_account, raise_errors=raise_call_errors)
    if run.thrown_signals:
        # messages.py builds on this module's steps, so it is imported when a model throws a signal, not before.
        from .messages import signals_follow

        signals_follow(instance, run, user=user, via_account=via_account)
    return created


def _store(instance: ProcessInstance, run: engine.EngineRun) -> None:
    instance.engine_state = run.state
    instance.variables = run.variables
    instance.next_timer_due_at = run.next_timer_due_at
    instance.waiting_messages = run.waiting_messages
    instance.waiting_signals = run.waiting_signals
    if run.completed:
        instance.status = ProcessStatus.COMPLETED
        instance.ended_at = timezone.now()
        instance.next_timer_due_at = None
        instance.waiting_messages = []
        instance.waiting_signals = []
    instance.save(
        update_fields=[
            "engine_state",
            "variables",
            "next_timer_due_at",
            "waiting_messages",
            "waiting_signals",
            "status",
            "ended_at",
            "updated_at",
        ]
    )
    if run.completed:
        signals.process_completed.send(sender=ProcessInstance, instance=instance)


def _start_queue_names(definition: WorkflowDefinition) -> list[str]:
    spec = definition_runtime(definition.pk).spec.spec
    if "start_queue_names" in spec:
        return spec["start_queue_names"]
    return engine.parse_definition(bpmn_xml=definition.bpmn_xml).start_queue_names  # deployed before it was stored


def _check_may_start(*, user, definition: WorkflowDefinition) -> None:
    first_queues = _start_queue_names(definition)
    if first_queues:
        allowed = queues_for(user=user, capability=Capability.WORK) | queues_for(
            user=user, capability=Capability.SUPERVISE
        )
        if not allowed.filter(queue_name__in=first_queues).exists():
            raise PermissionDenied(
                f"you may not start {definition.process_key}: you neither work nor supervise its first queue "
                f"({', '.join(first_queues)})",
                code="start_refused",
            )
    elif not holds_right(user=user, right=Right.START_PROCESSES):
        raise PermissionDenied(
            f"you may not start {definition.process_key}: it opens no user task, which needs the start_processes right",
            code="start_refused",
        )


@transaction.atomic
@acting_for_user
def process_start(
    *,
    user,
    process_key: str,
    business_key: str,
    variables: dict | None = None,
    via_account=None,
    now: datetime | None = None,
    sealed: Collection[str] = (),
) -> ProcessInstance:
    """Start the latest active version of a process and create its first tasks.

    `sealed`: names of variables the calling service holds sensitive (a case's title), sealed as the ones a form
    marks sensitive are (a client cannot send sealed text itself).

    Checked before the engine runs anything: the caller must work or supervise a queue of the process's first
    user tasks, or, for a process that opens none, hold the start_processes right.
    """
    if not isinstance(business_key, str) or not business_key.strip():
        raise InvalidInput("business_key is required", fields={"business_key": ["This field is required."]})
    if variables is not None and not isinstance(variables, dict):
        raise InvalidInput("variables must be an object", fields={"variables": ["Must be an object."]})
    refuse_sealed_input(variables or {})
    definition = (
        WorkflowDefinition.objects.filter(process_key=process_key, is_active=True)
        .defer("bpmn_xml", "engine_spec")  # definition_runtime holds the spec
        .order_by("-version")
        .first()
    )
    if definition is None:
        raise InvalidInput(f"no deployed process {process_key!r}", fields={"process_key": ["No such process."]})
    _check_may_start(user=user, definition=definition)
    runtime = definition_runtime(definition.pk)
    now = now or timezone.now()
    try:
        run = engine.start(
            spec=runtime.spec,
            variables=seal_sensitive(runtime.sensitive_names | set(sealed), variables or {}),
            now=now,
        )
    except engine.EngineError as exc:
        raise _engine_error(exc) from exc
    # The engine's own step, checked above: the instance and its first tasks, in whatever queues the model names.
    with system_scope():
        instance = ProcessInstance.objects.create(
            definition=definition,
            business_key=business_key.strip(),
            variables=run.variables,
            engine_state=run.state,
            started_by=user,
            next_timer_due_at=run.next_timer_due_at,
            waiting_messages=run.waiting_messages,
            waiting_signals=run.waiting_signals,
        )
        _open_tasks(instance, run, user=user, via_account=via_account)
        if run.completed:
            _store(instance, run)
    return instance


def advance_on_task_completed(*, task: WorkflowTask, variables: dict, user, via_account=None, **signal) -> None:
    """Receives tasks.signals.task_completed, which task_complete sends: feed the task's variables to the engine and create what comes next.

    task_complete has already locked the instance row, so parallel branches completing at once serialise here
    and the join fires once. The engine's step runs in the system row scope: task_complete checked the user, and
    the next tasks go to whatever queues the model names.
    """
    with system_scope():
        _advance(task=task, variables=variables, user=user, via_account=via_account)


def _advance(*, task: WorkflowTask, variables: dict, user, via_account) -> None:
    instance = task.process_instance  # task_complete locked and read it (else this reads it)
    if instance.status != ProcessStatus.RUNNING:
        raise Conflict(f"process {instance.pk} is {instance.status.lower()}", code=f"process_{instance.status.lower()}")
    runtime = definition_runtime(instance.definition_id)
    try:
        run = engine.complete_task(
            spec=runtime.spec,
            state=instance.engine_state,
            engine_task_id=str(task.engine_task_id),
            # task_complete sealed what this task's form marks sensitive; this seals what other forms do.
            variables=seal_sensitive(runtime.sensitive_names - sensitive_names(task.form_fields), variables),
            now=timezone.now(),
        )
    except engine.EngineError as exc:
        raise _engine_error(exc) from exc
    _store(instance, run)
    _open_tasks(instance, run, user=user, via_account=via_account)


@transaction.atomic
def process_fire_due_timers(*, now: datetime | None = None, limit: int = 500) -> int:
    """Fire the timers that have fallen due (boundary and intermediate). Returns how many instances moved.

    SKIP LOCKED lets several workers share the sweep; an instance being completed is picked up next time.
    An instance whose step fails (a script stopped at its limit, any engine error) keeps its state, gets an
    open ProcessIncident, and is skipped until process_incident_retry resolves it; the others still move.
    """
    now = now or timezone.now()
    moved = 0
    open_incident = ProcessIncident.objects.filter(
        process_instance=OuterRef("pk"), resolved_at__isnull=True, external_task__isnull=True
    )
    due = process_instances_for_update(
        ProcessInstance.objects.filter(status=ProcessStatus.RUNNING, next_timer_due_at__lte=now)
        .filter(~Exists(open_incident))
        .order_by("next_timer_due_at"),
        skip_locked=True,
    )[:limit]
    for instance in due:
        try:
            with transaction.atomic():
                _fire_timers(instance, now=now)
        except engine.EngineError as exc:
            _incident_record(instance, step=IncidentStep.FIRE_TIMERS, error=exc)
            continue
        moved += 1
    return moved


def _fire_timers(instance: ProcessInstance, *, now: datetime) -> None:
    runtime = definition_runtime(instance.definition_id)
    run = engine.fire_due_timers(spec=runtime.spec, state=instance.engine_state, now=now)
    _store(instance, run)
    _open_tasks(instance, run, user=None, via_account=None, raise_call_errors=True)


def _incident_fields(error: engine.EngineError) -> tuple[str, str, str]:
    """kind, element_id and message of an incident recording `error`."""
    kind = IncidentKind.SCRIPT_LIMIT if isinstance(error, engine.ScriptLimitExceeded) else IncidentKind.ENGINE_ERROR
    return kind, error.element_id or "", error.detail


def _incident_record(instance: ProcessInstance, *, step: str, error: engine.EngineError) -> ProcessIncident:
    kind, element_id, message = _incident_fields(error)
    return ProcessIncident.objects.create(
        process_instance=instance,
        step=step,
        kind=kind,
        element_id=element_id,
        message=message,
    )


@transaction.atomic
@acting_for_user
def process_incident_retry(*, user, incident_id: int, now: datetime | None = None) -> ProcessIncident:
    """Run an incident's failed step again: resolve the incident when it succeeds, or record the new error.

    For supervisors of a queue the instance has tasks in; a superuser too needs that role (no superuser shortcut,
    see entitlements.access.console_shows_every_row). Returns the incident: resolved, or still open with the new
    error.
    """
    incident = ProcessIncident.objects.filter(pk=incident_id).only("process_instance_id").first()
    if incident is None:
        raise NotFound(f"incident {incident_id} not found", code="incident_not_found")
    try:
        instance = _instance_for_supervisor(user=user, process_instance_id=incident.process_instance_id)
    except NotFound:
        raise NotFound(f"incident {incident_id} not found", code="incident_not_found") from None
    incident = incidents_for_update().get(pk=incident_id)
    if incident.resolved_at is not None:
        raise Conflict(f"incident {incident_id} is already resolved", code="incident_resolved")
    if incident.step == IncidentStep.EXTERNAL_TASK:
        # A worker runs the step: the retry hands the item back to the pool with one more try.
        with system_scope():
            return_to_pool(external_tasks_for_update().get(pk=incident.external_task_id), retries=1, user=user)
        incident.refresh_from_db()
        return incident
    if instance.status != ProcessStatus.RUNNING:
        raise Conflict(f"process {instance.pk} is {instance.status.lower()}", code="process_not_running")
    try:
        with transaction.atomic(), system_scope():  # the engine's step, checked above
            _fire_timers(instance, now=now or timezone.now())
    except engine.EngineError as exc:
        incident.kind, incident.element_id, incident.message = _incident_fields(exc)
        incident.save(update_fields=["kind", "element_id", "message"])
        return incident
    incident.resolved_at = timezone.now()
    incident.resolved_by = user
    incident.save(update_fields=["resolved_at", "resolved_by"])
    return incident


def _instance_for_supervisor(*, user, process_instance_id: int) -> ProcessInstance:
    instance = process_instances_for_update().filter(pk=process_instance_id).first()
    if instance is None:
        raise NotFound(f"process {process_instance_id} not found", code="process_not_found")
    queues = WorkflowTask.objects.filter(process_instance=instance).values_list("queue_id", flat=True).distinct()
    supervised = queues_for(user=user, capability=Capability.SUPERVISE).filter(queue_name__in=list(queues))
    if not supervised.exists():
        raise NotFound(f"process {process_instance_id} not found", code="process_not_found")
    return instance


def _tasks_suspension_set(instance: ProcessInstance, *, suspended: bool, user, via_account, reason: str) -> None:
    """Mark the instance's active tasks suspended (or not), locked after the instance, with a history event each.

    The flag on the task row is what claim, claim-next (flowable.claim_next_task) and completion read; setting it
    under the task's lock means a claim that locked the task first is claimed-then-suspended, and one that waited
    finds it suspended.
    """
    event = TaskEventType.SUSPENDED if suspended else TaskEventType.RESUMED
    with system_scope(), history_batched():  # every queue the instance has tasks in: checked by the caller
        tasks = list(
            tasks_for_update(
                WorkflowTask.objects.filter(
                    process_instance=instance, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
                ).exclude(suspended=suspended)
            )
        )
        WorkflowTask.objects.filter(pk__in=[t.pk for t in tasks]).update(suspended=suspended, updated_at=timezone.now())
        for task in tasks:
            task_history_append(
                task,
                event,
                user=user,
                via_account=via_account,
                comment=reason,
                old={"suspended": not suspended},
                new={"suspended": suspended},
            )


@transaction.atomic
@acting_for_user
def process_suspend(*, user, process_instance_id: int, reason: str = "", via_account=None) -> ProcessInstance:
    """Suspend a running instance: its tasks can be neither claimed nor completed and its timers wait.

    For supervisors of a queue the instance has tasks in (else 404). A task already claimed stays with its holder,
    who cannot complete it until the instance is resumed.
    """
    instance = _instance_for_supervisor(user=user, process_instance_id=process_instance_id)
    if instance.status != ProcessStatus.RUNNING:
        raise Conflict(f"process {instance.pk} is {instance.status.lower()}", code="process_not_running")
    _tasks_suspension_set(instance, suspended=True, user=user, via_account=via_account, reason=reason)
    instance.status = ProcessStatus.SUSPENDED
    instance.save(update_fields=["status", "updated_at"])
    return instance


@transaction.atomic
@acting_for_user
def process_resume(*, user, process_instance_id: int, reason: str = "", via_account=None) -> ProcessInstance:
    """Resume a suspended instance: its tasks can be claimed and completed again, and a timer that fell due
    meanwhile fires on the timer job's next run."""
    instance = _instance_for_supervisor(user=user, process_instance_id=process_instance_id)
    if instance.status != ProcessStatus.SUSPENDED:
        raise Conflict(f"process {instance.pk} is not suspended", code="process_not_suspended")
    _tasks_suspension_set(instance, suspended=False, user=user, via_account=via_account, reason=reason)
    instance.status = ProcessStatus.RUNNING
    instance.save(update_fields=["status", "updated_at"])
    return instance


@transaction.atomic
@acting_for_user
def process_cancel(*, user, process_instance_id: int, reason: str = "", via_account=None) -> ProcessInstance:
    """Cancel a running or suspended instance and close its open tasks (a claimed one gives its queue's load back).

    `via_account` is accepted for the API's sake; task_close records the acting user."""
    instance = _instance_for_supervisor(user=user, process_instance_id=process_instance_id)
    if instance.status in (ProcessStatus.COMPLETED, ProcessStatus.CANCELLED):
        raise Conflict(f"process {instance.pk} has ended", code="process_ended")
    run = engine.cancel(spec=definition_runtime(instance.definition_id).spec, state=instance.engine_state)
    # The instance's open tasks, in whichever queues they are (checked above: the user supervises one of them).
    with system_scope():
        # Its children first (they are locked before any task), and theirs.
        called_processes.children_cancel(instance, user=user, reason=reason or "calling process cancelled")
        tasks = list(
            tasks_for_update(WorkflowTask.objects.filter(process_instance=instance, status__in=["OPEN", "CLAIMED"]))
        )
        task_queues_lock(tasks)
        for task in tasks:
            task_close(task, status=TaskStatus.CANCELLED, user=user, reason=reason or "process cancelled")
        external_tasks_sync(instance, run, user=user)
        instance.engine_state = run.state
        instance.status = ProcessStatus.CANCELLED
        instance.ended_at = timezone.now()
        instance.next_timer_due_at = None
        instance.waiting_messages = []
        instance.waiting_signals = []
        instance.save()
    return instance


@dataclass(frozen=True)
class MigrationReport:
    """What a bulk migration did: the instances moved, those refused (with the element ids lacking a counterpart,
    or why), in the order asked."""

    migrated: list[int]
    refused: dict[int, list[str]]


@transaction.atomic
@acting_for_user
def process_migrate(
    *,
    user,
    process_instance_id: int,
    target_version: int,
    activity_mapping: dict[str, str] | None = None,
    reason: str = "",
    via_account=None,
) -> ProcessInstance:
    """Move a running or suspended instance onto another version of its process key (migration.py).

    For supervisors of a queue the instance has tasks in (else 404). An unknown version or a mapping naming
    elements neither version has is 400 naming the field; an instance at an element with no counterpart on the
    target version is 409 `migration_refused` listing the ids, and is left as it was. Its open tasks keep their rows
    (and claims), with the new element's key and a MIGRATED event each.
    """
    from . import migration

    mapping = dict(activity_mapping or {})
    instance = _instance_for_supervisor(user=user, process_instance_id=process_instance_id)
    if instance.status in (ProcessStatus.COMPLETED, ProcessStatus.CANCELLED):
        raise Conflict(f"process {instance.pk} has ended", code="process_ended")
    source = definition_runtime(instance.definition_id)
    target_definition = WorkflowDefinition.objects.filter(
        process_key=source.process_key, version=target_version
    ).first()
    if target_definition is None:
        detail = f"{source.process_key} has no version {target_version}"
        raise InvalidInput(detail, code="invalid_migration", fields={"target_version": [detail]})
    if target_definition.pk == instance.definition_id:
        detail = f"process {instance.pk} already runs version {target_version}"
        raise InvalidInput(detail, code="invalid_migration", fields={"target_version": [detail]})
    target = definition_runtime(target_definition.pk)
    old_ids, new_ids = migration.element_ids(source.spec), migration.element_ids(target.spec)
    wrong = [f"'{old}' is not an element of version {source.version}" for old in mapping if old not in old_ids] + [
        f"'{new}' is not an element of version {target.version}" for new in mapping.values() if new not in new_ids
    ]
    if wrong:
        raise InvalidInput("; ".join(wrong), code="invalid_migration", fields={"activity_mapping": wrong})
    try:
        run = migration.migrate(
            spec=source.spec,
            target_spec=target.spec,
            state=instance.engine_state,
            activity_mapping=mapping,
            now=timezone.now(),
        )
    except migration.MigrationRefused as exc:
        raise Conflict(
            f"process {instance.pk} stays on version {source.version}: {exc.detail}",
            code="migration_refused",
            fields={"unmapped_element_ids": exc.unmapped},
        ) from None
    if run.opened_task_ids or run.closed_task_ids or run.ready_external_tasks or run.ready_calls:
        raise Conflict(
            f"process {instance.pk} stays on version {source.version}: only instances waiting at user tasks, "
            "timers or messages can be migrated",
            code="migration_refused",
            fields={"unmapped_element_ids": []},
        )
    keys = {ready.engine_task_id: ready for ready in run.ready_user_tasks}
    with system_scope(), history_batched():  # every queue the instance has tasks in: checked above
        tasks = list(
            tasks_for_update(
                WorkflowTask.objects.filter(process_instance=instance, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED])
            )
        )
        for task in tasks:
            ready = keys.get(str(task.engine_task_id))
            old = {"definition_version": source.version, "task_definition_key": task.task_definition_key}
            if ready is not None:
                task.task_definition_key = ready.task_definition_key
                task.name = ready.name
                task.save(update_fields=["task_definition_key", "name", "updated_at"])
            new = {"definition_version": target.version, "task_definition_key": task.task_definition_key}
            task_history_append(
                task, TaskEventType.MIGRATED, user=user, via_account=via_account, comment=reason, old=old, new=new
            )
        instance.definition_id = target_definition.pk
        instance.engine_state = run.state
        instance.next_timer_due_at = run.next_timer_due_at
        instance.waiting_messages = run.waiting_messages
        instance.waiting_signals = run.waiting_signals
        instance.save()
    return instance


def processes_migrate(
    *,
    user,
    process_instance_ids: Collection[int],
    target_version: int,
    activity_mapping: dict[str, str] | None = None,
    reason: str = "",
    via_account=None,
) -> MigrationReport:
    """process_migrate for each instance, one transaction each: a refused or unreachable instance is reported and
    left as it was, the others move. A bad target version or mapping (400) stops the batch where it is found."""
    migrated, refused = [], {}
    for process_instance_id in process_instance_ids:
        try:
            process_migrate(
                user=user,
                process_instance_id=process_instance_id,
                target_version=target_version,
                activity_mapping=activity_mapping,
                reason=reason,
                via_account=via_account,
            )
        except (Conflict, NotFound) as exc:
            refused[process_instance_id] = list(exc.fields.get("unmapped_element_ids", [])) or [exc.code]
        else:
            migrated.append(process_instance_id)
    return MigrationReport(migrated=migrated, refused=refused)
