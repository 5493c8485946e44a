"""Messages: deliver one to the process instance waiting for it, or start a process with it. Signals: broadcast
one to every instance waiting for it and start the processes it starts (signal_broadcast, at the end), from the
API or from a model's signal throw event (signals_follow).

A message (`<bpmn:message>`, sent by its name) is caught by an intermediate message catch event, a receiveTask, a
boundary message event or a message start event (tasks/bpmn/engine.py). message_correlate finds the running
instances waiting for it, by the names each instance records after every step (ProcessInstance.waiting_messages),
narrowed by business key and/or correlation keys (process variables that must be equal), among the instances the
sender may act on: those with a task in a queue the sender works or supervises (the rule of process_start's first
queue). An integration account acting for a user (X-On-Behalf-Of) sends as that user, recorded as the account.

Race-safe: the candidates are read with FOR UPDATE, so PostgreSQL re-evaluates the conditions on each row's latest
version after any transaction that held it (a timer that fired, a cancel, another message) and drops the rows
that no longer wait. Of two messages for one waiting element, the second finds nothing waiting (404); a message
and a timer, or a message and a cancel, each have exactly one outcome.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from uuid import uuid4

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from entitlements.access import queues_for
from entitlements.models import Capability
from entitlements.row_scope import acting_for_user, system_scope
from tasks.locks import process_instances_for_update
from tasks.models import ProcessInstance, ProcessStatus, WorkflowDefinition, WorkflowTask

from . import engine
from .forms import refuse_sealed_input, seal_sensitive
from .workflows import _check_may_start, _engine_error, _open_tasks, _store, definition_runtime

MAX_MESSAGE_NAME_LENGTH = 200


@dataclass(frozen=True)
class MessageOutcome:
    instance: ProcessInstance
    started: bool  # True: the message started this instance; False: a waiting instance caught it


def _validated(
    message_name, business_key, correlation_keys, variables, *, name_field: str = "message_name"
) -> tuple[str, str | None, dict, dict]:
    fields = {}
    if not isinstance(message_name, str) or not message_name.strip():
        fields[name_field] = ["This field is required."]
    elif len(message_name) > MAX_MESSAGE_NAME_LENGTH:
        fields[name_field] = [f"At most {MAX_MESSAGE_NAME_LENGTH} characters."]
    if business_key is not None and (not isinstance(business_key, str) or not business_key.strip()):
        fields["business_key"] = ["Must be a non-blank string when given."]
    if correlation_keys is not None and not isinstance(correlation_keys, dict):
        fields["correlation_keys"] = ["Must be an object of variable names and values."]
    if variables is not None and not isinstance(variables, dict):
        fields["variables"] = ["Must be an object."]
    if fields:
        name = next(iter(fields))
        raise InvalidInput(f"{name}: {fields[name][0]}", fields=fields)
    refuse_sealed_input(variables or {})
    return message_name.strip(), business_key.strip() if business_key else None, correlation_keys or {}, variables or {}


def _instances_the_sender_may_act_on(user):
    """Instances with a task in a queue `user` works or supervises."""
    queues = queues_for(user=user, capability=Capability.WORK) | queues_for(user=user, capability=Capability.SUPERVISE)
    return Exists(
        WorkflowTask.objects.filter(
            process_instance=OuterRef("pk"), queue_id__in=queues.values("queue_name")
        ).order_by()
    )


@transaction.atomic
@acting_for_user
def message_correlate(
    *,
    user,
    message_name: str,
    business_key: str | None = None,
    correlation_keys: dict | None = None,
    variables: dict | None = None,
    via_account=None,
    now: datetime | None = None,
) -> MessageOutcome:
    """Deliver `message_name` to the one running instance waiting for it (with this business key and these
    correlation variables, when given) and merge `variables` into its variables where it is caught; or, when no
    instance waits, start the process whose message start event it names (with `business_key`).

    NotFound (message_not_correlated) when neither; Conflict (message_ambiguous) when several instances wait, or
    several processes start with it.
    """
    message_name, business_key, correlation_keys, variables = _validated(
        message_name, business_key, correlation_keys, variables
    )
    now = now or timezone.now()
    waiting = ProcessInstance.objects.filter(
        status=ProcessStatus.RUNNING, waiting_messages__contains=[message_name]
    ).filter(_instances_the_sender_may_act_on(user))
    if business_key is not None:
        waiting = waiting.filter(business_key=business_key)
    if correlation_keys:
        waiting = waiting.filter(variables__contains=correlation_keys)
    # Locked, and the conditions re-checked on each row's latest version (see the module's docstring).
    locked = list(process_instances_for_update(waiting)[:2])
    if len(locked) > 1:
        raise Conflict(
            f"more than one running process instance waits for the message '{message_name}'"
            f"{_narrowed_by(business_key, correlation_keys)}; give a business_key or correlation_keys that single "
            "one out",
            code="message_ambiguous",
        )
    if locked:
        return MessageOutcome(
            instance=_deliver(locked[0], message_name, variables, user=user, via_account=via_account, now=now),
            started=False,
        )
    return _start(
        message_name,
        business_key,
        variables,
        user=user,
        via_account=via_account,
        now=now,
        narrowed=_narrowed_by(business_key, correlation_keys),
    )


def _narrowed_by(business_key: str | None, correlation_keys: dict) -> str:
    parts = []
    if business_key is not None:
        parts.append(f"business key '{business_key}'")
    if correlation_keys:
        parts.append(f"correlation keys {', '.join(sorted(correlation_keys))}")
    return f" with {' and '.join(parts)}" if parts else ""


def _deliver(
    instance: ProcessInstance, message_name: str, variables: dict, *, user, via_account, now
) -> ProcessInstance:
    runtime = definition_runtime(instance.definition_id)
    try:
        run = engine.deliver_message(
            spec=runtime.spec,
            state=instance.engine_state,
            message_name=message_name,
            variables=seal_sensitive(runtime.sensitive_names, variables),
            now=now,
        )
    except engine.EngineError as exc:
        raise _engine_error(exc) from exc
    with system_scope():  # the engine's step: checked above that the sender may act on the instance
        _store(instance, run)
        _open_tasks(instance, run, user=user, via_account=via_account)
    return instance


def _start(message_name: str, business_key, variables, *, user, via_account, now, narrowed: str) -> MessageOutcome:
    # The version each process key starts on (the latest active one), its spec read through definition_runtime's
    # cache: a few process keys, no spec read from the database after the first message.
    starting = _latest_starting_on(message_name, "message_start_names")
    if not starting:
        raise NotFound(
            f"no running process instance you may act on waits for the message '{message_name}'{narrowed}, and no "
            "process starts with it",
            code="message_not_correlated",
        )
    if len(starting) > 1:
        keys = ", ".join(sorted(runtime.process_key for runtime in starting))
        raise Conflict(f"the message '{message_name}' starts more than one process: {keys}", code="message_ambiguous")
    definition = WorkflowDefinition.objects.defer("bpmn_xml", "engine_spec").get(pk=starting[0].definition_id)
    if business_key is None:
        raise InvalidInput(
            f"the message '{message_name}' starts {definition.process_key}, which needs a business_key",
            fields={"business_key": ["Required to start a process."]},
        )
    _check_may_start(user=user, definition=definition)
    runtime = definition_runtime(definition.pk)
    try:
        run = engine.start_by_message(
            spec=runtime.spec,
            message_name=message_name,
            variables=seal_sensitive(runtime.sensitive_names, variables),
            now=now,
        )
    except engine.EngineError as exc:
        raise _engine_error(exc) from exc
    with system_scope():  # as process_start: the instance and its first tasks, checked above
        instance = _instance_create(definition, business_key, run, user=user)
        _open_tasks(instance, run, user=user, via_account=via_account)
        if run.completed:
            _store(instance, run)
    return MessageOutcome(instance=instance, started=True)


@transaction.atomic
@acting_for_user
def signal_broadcast(
    *,
    user,
    signal_name: str,
    variables: dict | None = None,
    business_key: str | None = None,
    via_account=None,
    now: datetime | None = None,
) -> list[ProcessInstance]:
    """Deliver `signal_name` to every running instance waiting for it that the sender may act on (a task in a
    queue they work or supervise), merging `variables` where it is caught, and start a new instance (with
    `business_key`, or a generated one) of every latest process whose signal start event waits for it and that
    the sender may start. Returns the instances reached, the waiting ones in id order and then the started ones
    (none is not an error: a broadcast reaches whoever listens).

    The instances are locked in id order, as any service locks several, and the wait is re-checked on each locked
    row, so an instance a timer, a cancel or another signal moved meanwhile is passed over, not signalled twice.
    """
    signal_name, business_key, _, variables = _validated(
        signal_name, business_key, None, variables, name_field="signal_name"
    )
    reached, started = _broadcast(
        signal_name,
        variables,
        user=user,
        via_account=via_account,
        now=now or timezone.now(),
        reach=_instances_the_sender_may_act_on(user),
        may_start=lambda definition: _may_start(user, definition),
        business_key=business_key,
    )
    return reached + started


# The instances a chain of signals has advanced (a throw, the instances it reached, what they threw in turn...),
# and the definitions it started: each is reached or started once per chain, so models that signal each other
# cannot loop.
_CHAIN_INSTANCES: ContextVar[frozenset[int]] = ContextVar("signal_chain_instances", default=frozenset())
_CHAIN_STARTS: ContextVar[frozenset[int]] = ContextVar("signal_chain_starts", default=frozenset())


@contextmanager
def _in_chain(instance_id: int):
    token = _CHAIN_INSTANCES.set(_CHAIN_INSTANCES.get() | {instance_id})
    try:
        yield
    finally:
        _CHAIN_INSTANCES.reset(token)


def signals_follow(instance: ProcessInstance, run: engine.EngineRun, *, user, via_account) -> None:
    """Broadcast the signals `instance`'s throw events threw in `run` (it caught its own already), as the engine:
    to every other running instance waiting for them and to the processes they start (with the thrower's business
    key), whatever queues those are in: the model's author chose to throw them. Called by tasks/bpmn/workflows.py
    after each step it stores, inside that step's transaction, the thrower locked."""
    with system_scope(), _in_chain(instance.pk):
        for signal_name in run.thrown_signals:
            _broadcast(
                signal_name,
                {},
                user=user,
                via_account=via_account,
                now=timezone.now(),
                reach=None,
                may_start=lambda definition: True,
                business_key=instance.business_key,
            )


def _may_start(user, definition: WorkflowDefinition) -> bool:
    try:
        _check_may_start(user=user, definition=definition)
    except PermissionDenied:
        return False
    return True


def _broadcast(
    signal_name: str, variables: dict, *, user, via_account, now, reach, may_start, business_key: str | None
) -> tuple[list[ProcessInstance], list[ProcessInstance]]:
    waiting = ProcessInstance.objects.filter(
        status=ProcessStatus.RUNNING, waiting_signals__contains=[signal_name]
    ).exclude(pk__in=_CHAIN_INSTANCES.get())
    if reach is not None:
        waiting = waiting.filter(reach)
    reached = []
    for instance in process_instances_for_update(waiting):
        runtime = definition_runtime(instance.definition_id)
        try:
            run = engine.deliver_signal(
                spec=runtime.spec,
                state=instance.engine_state,
                signal_name=signal_name,
                variables=seal_sensitive(runtime.sensitive_names, variables),
                now=now,
            )
        except engine.EngineError as exc:
            raise _engine_error(exc) from exc
        # The engine's step: checked above that the sender may act on the instance (or the engine sends it).
        with system_scope(), _in_chain(instance.pk):
            _store(instance, run)
            _open_tasks(instance, run, user=user, via_account=via_account)
        reached.append(instance)
    started = []
    for runtime in _latest_starting_on(signal_name, "signal_start_names"):
        if runtime.definition_id in _CHAIN_STARTS.get():
            continue
        definition = WorkflowDefinition.objects.defer("bpmn_xml", "engine_spec").get(pk=runtime.definition_id)
        if not may_start(definition):
            continue
        try:
            run = engine.start_by_signal(
                spec=runtime.spec,
                signal_name=signal_name,
                variables=seal_sensitive(runtime.sensitive_names, variables),
                now=now,
            )
        except engine.EngineError as exc:
            raise _engine_error(exc) from exc
        token = _CHAIN_STARTS.set(_CHAIN_STARTS.get() | {runtime.definition_id})
        try:
            with system_scope():  # as process_start: the instance and its first tasks, checked above
                instance = _instance_create(definition, business_key or uuid4().hex, run, user=user)
                with _in_chain(instance.pk):
                    _open_tasks(instance, run, user=user, via_account=via_account)
                    if run.completed:
                        _store(instance, run)
        finally:
            _CHAIN_STARTS.reset(token)
        started.append(instance)
    return reached, started


def _latest_starting_on(name: str, key: str) -> list:
    """The runtimes (definition_runtime) of the latest active version of each process key whose start events
    wait for `name` (`key`: "message_start_names" or "signal_start_names"), read through definition_runtime's
    cache: a few process keys, no spec read from the database after the first time."""
    latest = (
        WorkflowDefinition.objects.filter(is_active=True)
        .order_by("process_key", "-version")
        .distinct("process_key")
        .values_list("pk", flat=True)
    )
    return [definition_runtime(pk) for pk in latest if name in definition_runtime(pk).spec.spec.get(key, [])]


def _instance_create(definition: WorkflowDefinition, business_key: str, run: engine.EngineRun, *, user):
    return ProcessInstance.objects.create(
        definition=definition,
        business_key=business_key,
        variables=run.variables,
        engine_state=run.state,
        started_by=user,
        next_timer_due_at=run.next_timer_due_at,
        waiting_messages=run.waiting_messages,
        waiting_signals=run.waiting_signals,
    )
