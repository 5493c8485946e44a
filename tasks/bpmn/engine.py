"""The BPMN engine: parses workflow definitions and runs process instances on SpiffWorkflow, with no database.

Only tasks/bpmn/ imports SpiffWorkflow: this module runs instances and is the engine's interface (it re-exports
parse_definition and read_bpmn_document from parsing.py, the errors from errors.py); spiff.py configures
SpiffWorkflow's script engine, timers and serializer. Services load rows, call one function here, and store
what it returns; every value in and out is plain, JSON-serialisable data.

Interface (all functions keyword-only)::

    parse_definition(*, bpmn_xml: str) -> ParsedDefinition
    load_spec(spec: dict) -> LoadedSpec        the spec restored into SpiffWorkflow's objects, to reuse
    start(*, spec: dict | LoadedSpec, variables: dict, now: datetime) -> EngineRun
    complete_task(*, spec: dict | LoadedSpec, state: dict, engine_task_id: str, variables: dict, now: datetime)
        -> EngineRun
    complete_external_task(*, spec: dict | LoadedSpec, state: dict, engine_task_id: str, variables: dict,
        now: datetime) -> EngineRun            the same for an open external task (serviceTask camunda:type="external")
    throw_error(*, spec, state, engine_task_id, error_code, error_message, variables, now) -> EngineRun
                                          a BPMN error raised at an open external task by its worker; ErrorNotCaught
                                          when no error boundary event catches it
    complete_call(*, spec, state, engine_task_id, variables, now) -> EngineRun   a call activity's child ended
    fire_due_timers(*, spec: dict | LoadedSpec, state: dict, now: datetime) -> EngineRun
    cancel(*, spec: dict | LoadedSpec, state: dict) -> EngineRun
    deliver_message(*, spec: dict | LoadedSpec, state: dict, message_name: str, variables: dict, now: datetime)
        -> EngineRun                      MessageNotAwaited when nothing in the instance waits for it
    start_by_message(*, spec: dict | LoadedSpec, message_name: str, variables: dict, now: datetime) -> EngineRun
    deliver_signal(*, spec: dict | LoadedSpec, state: dict, signal_name: str, variables: dict, now: datetime)
        -> EngineRun                      MessageNotAwaited when nothing in the instance waits for it
    start_by_signal(*, spec: dict | LoadedSpec, signal_name: str, variables: dict, now: datetime) -> EngineRun
    read_bpmn_document(*, bpmn_xml: str) -> lxml Element   the XML, parsed safely (for tasks/bpmn/diagram.py)
    element_states(*, spec: dict, state: dict) -> dict[str, str]   BPMN element id -> ELEMENT_ACTIVE | ELEMENT_COMPLETED
    validate_form_variables(*, form_fields: list[FormField], variables: dict) -> dict[str, str]

    ParsedDefinition(process_key, name, spec, user_tasks: list[UserTaskInfo], queue_names: list[str],
                     start_queue_names: list[str])
    UserTaskInfo(id, name, queue_name, candidate_groups, priority, required_skills, form_fields, sla_hours,
                 documentation)
    FormField(id, label, type, required, enum_values: list[EnumValue], sensitive);  EnumValue(id, name)
    EngineRun(state, ready_user_tasks: list[ReadyUserTask], completed, variables, closed_task_ids,
              opened_task_ids, next_timer_due_at, ready_external_tasks: list[ReadyExternalTask],
              waiting_messages: list[str], waiting_signals: list[str], thrown_signals: list[str])
              (closed_task_ids and opened_task_ids count user and external tasks alike)
    ReadyExternalTask(engine_task_id, activity_id, name, topic_name, priority)
    ReadyUserTask(engine_task_id, task_definition_key, name, queue_name, candidate_groups, priority,
                  required_skills, form_fields, sla_hours, documentation)

    EngineError(detail, element_id)         anything that stops the engine; the base of:
      BpmnError(detail, element_id, line)   the definition is refused (parse time)
      ScriptError(detail, element_id)       an expression or script was refused or failed (run time)
        ScriptLimitExceeded(detail, element_id, kind)  it was stopped at the CPU ("cpu") or memory ("memory") bound
      TaskNotReady(detail, element_id)      complete_task was given a task that is not open
      TaskDataError(detail, element_id, field_errors)  the variables do not fit the task's form
      MessageNotAwaited(detail, element_id)  deliver_message / start_by_message: no element waits for it
      ErrorNotCaught(detail, element_id)    throw_error: nothing catches the error

`spec` is ParsedDefinition.spec, stored once per definition version; `state` is EngineRun.state, stored per
instance. The state never contains the spec, and no function mutates the dicts it is given, so a failed call
leaves the caller's stored state as it was. Restoring a spec into SpiffWorkflow's objects costs more than a step
of a small model: a caller that runs many steps of one definition loads it once (load_spec) and passes the
LoadedSpec, which every instance shares (SpiffWorkflow keeps an instance's state in its tasks, never in the spec).

What a model may contain (anything else is refused with the element's id and line):
  start events and end events without event definitions; userTask; scriptTask (Python); serviceTask with
  camunda:type="external" and camunda:topic (optional camunda:taskPriority), as Camunda Modeler writes an
  external task: the instance waits there as at a userTask, for a worker (tasks/external.py); exclusive, inclusive
  and parallel gateways; sequence flows; lanes; embedded subProcess; boundary timer events (interrupting or
  not) and intermediate timer catch events, with timeDuration or timeDate; messages (<bpmn:message>, sent by
  its name, or its id when unnamed): message start events of the process, intermediate message catch events,
  receiveTasks and boundary message events; signals (<bpmn:signal>, broadcast by name): signal start events of
  the process, intermediate signal catch events, boundary signal events, and intermediate signal throw events and
  signal end events (EngineRun.thrown_signals: the instance catches its own; the services broadcast them); error
  and escalation end events inside an embedded subProcess, caught by boundary error/escalation events on it;
  boundary error events on an external serviceTask, catching what its worker raises (throw_error), with optional
  camunda:errorCodeVariable and camunda:errorMessageVariable; event subprocesses drawn in the process itself
  (event_subprocesses.py), started by one message, signal, timer, error or escalation start event, interrupting
  (the rest of the process is cancelled) or not (isInterrupting="false"; never for an error): an error nothing
  else catches (an error end event, or a worker's error) starts an error one; documentation, text annotations,
  associations and groups; one pool (collaboration participant) around the executable process.
  A userTask may be multi-instance, parallel or sequential, over a collection or a cardinality, with a
  completion condition (multi_instance.py): each instance is a ready user task of its own, whose
  instance_variables hold its element variable and loopCounter.
  callActivity (call_activity.py): the engine waits in it; EngineRun.ready_calls lists the waiting ones, with the
  variables their camunda:in entries pass, and complete_call continues with the child's variables.
  businessRuleTask (dmn.py): evaluates a deployed DMN decision (through the resolver the services register) as
  the engine reaches it.

userTask conventions:
  queue      the name of the task's lane (the lane id if it has no name), unless overridden by the
             `candidateGroup` property or a `camunda:candidateGroups` / `flowable:candidateGroups` attribute
             (comma-separated; the first group is the queue, all of them are candidate_groups). Queue names and
             skills are slugs: letters, digits, `-` and `_`.
  properties <bpmn:extensionElements><spiffworkflow:properties>
               <spiffworkflow:property name="priority" value="70"/>          0-100
               <spiffworkflow:property name="requiredSkills" value="fraud,legal"/>
               <spiffworkflow:property name="slaHours" value="48"/>          a positive number
               <spiffworkflow:property name="candidateGroup" value="triage"/>
             (`camunda:properties` with the same shape is read too; spiffworkflow wins on conflict.)
  form       <camunda:formData><camunda:formField id="allegation_type" label="Allegation type" type="enum">
               <camunda:validation><camunda:constraint name="required"/></camunda:validation>
               <camunda:value id="FRAUD" name="Fraud"/></camunda:formField></camunda:formData>
             types: string, text, boolean, enum, date (ISO yyyy-mm-dd), long. This is what Camunda Modeler's
             Forms panel writes (`text` is our addition: a multi-line string). A string, text or date field
             with <camunda:properties><camunda:property id="sensitive" value="true"/></camunda:properties> is
             sensitive: its value is stored encrypted and reaches the engine sealed, so no condition or script
             may read it (refused at deploy).

Expressions (gateway conditions, timer expressions) and scripts (scriptTask, spiffworkflow pre/post scripts)
are Python over the process variables, run in a sandbox: no imports, no names or attributes starting with `__`,
attribute access only to the public methods of JSON value types (str, int, float, bool, list, dict) minus
`format`/`format_map`, and builtins limited to SAFE_BUILTINS. Sources are checked when a definition is parsed
and again before every run; scripts may leave only JSON values in the process variables. Each evaluation runs
in a child process of tasks/bpmn/script_sandbox.py, bounded in CPU time and memory (settings
WORKFLOW_SCRIPT_CPU_SECONDS, WORKFLOW_SCRIPT_MEMORY_MB); one that overruns raises ScriptLimitExceeded naming
the element, and the web or worker thread that asked is free again.

Timer expressions may be a literal ISO 8601 duration (`PT48H`) or date-time (`2026-05-01T09:00:00Z`, naive
means UTC), as BPMN editors write them, or an expression giving one. Timers compare against the `now` each
call is given, never the wall clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition, SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import ThrowingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from . import call_activity, event_subprocesses, multi_instance
from .call_activity import ReadyCall
from .errors import (
    BpmnError,
    EngineError,
    ErrorNotCaught,
    MessageNotAwaited,
    ScriptError,
    ScriptLimitExceeded,
    TaskDataError,
    TaskNotReady,
)
from .parsing import (
    BPMN_NS,
    BPMNDI_NS,
    FORM_FIELD_TYPES,
    MAX_PRIORITY,
    MIN_PRIORITY,
    EnumValue,
    FormField,
    ParsedDefinition,
    UserTaskInfo,
    parse_definition,
    read_bpmn_document,
)
from .script_sandbox import SAFE_BUILTINS
from .script_sandbox import non_json_value as _non_json_value
from .spiff import SERIALIZER, SandboxedScriptEngine, as_utc, bpmn_id

__all__ = [
    "BPMNDI_NS",
    "BPMN_NS",
    "BpmnError",
    "ELEMENT_ACTIVE",
    "ELEMENT_COMPLETED",
    "EngineError",
    "EngineRun",
    "EnumValue",
    "ErrorNotCaught",
    "FORM_FIELD_TYPES",
    "FormField",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "ParsedDefinition",
    "ReadyExternalTask",
    "ReadyUserTask",
    "SAFE_BUILTINS",
    "ScriptError",
    "ScriptLimitExceeded",
    "TaskDataError",
    "TaskNotReady",
    "UserTaskInfo",
    "cancel",
    "complete_external_task",
    "complete_call",
    "complete_task",
    "ReadyCall",
    "element_states",
    "fire_due_timers",
    "LoadedSpec",
    "MessageNotAwaited",
    "deliver_message",
    "deliver_signal",
    "load_spec",
    "start_by_message",
    "start_by_signal",
    "throw_error",
    "parse_definition",
    "read_bpmn_document",
    "start",
    "validate_form_variables",
]

# A model stuck in a loop of automatic steps (scripts, gateways) must fail, not hang a web worker.
MAX_AUTOMATIC_STEPS = 10_000


# --- what a run gives back ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadyUserTask:
    engine_task_id: str
    task_definition_key: str
    name: str
    queue_name: str
    candidate_groups: list[str]
    priority: int | None
    required_skills: list[str]
    form_fields: list[FormField]
    sla_hours: float | None
    documentation: str
    # One instance of a multi-instance task: its element variable and loopCounter (multi_instance.py); else empty.
    instance_variables: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReadyExternalTask:
    engine_task_id: str
    activity_id: str  # the serviceTask's BPMN id
    name: str
    topic_name: str
    priority: int


@dataclass(frozen=True)
class EngineRun:
    """Where an instance stands after one engine call."""

    state: dict  # store in process_instances.engine_state; pass back on the next call
    ready_user_tasks: list[ReadyUserTask]  # every open user task, in model order
    completed: bool  # the process reached its end (False after cancel)
    variables: dict  # the process variables as the latest step left them
    closed_task_ids: list[str] = field(default_factory=list)  # open user tasks the engine closed in this call
    opened_task_ids: list[str] = field(default_factory=list)  # user tasks that became open in this call
    next_timer_due_at: datetime | None = None  # earliest pending timer, for the timer sweep
    ready_external_tasks: list[ReadyExternalTask] = field(default_factory=list)  # every open external task
    ready_calls: list[ReadyCall] = field(default_factory=list)  # every call activity waiting for its child
    # closed_task_ids of multi-instance instances closed because their loop's completion condition was met
    loop_done_task_ids: list[str] = field(default_factory=list)
    waiting_messages: list[str] = field(default_factory=list)  # names of the messages it waits for, sorted
    waiting_signals: list[str] = field(default_factory=list)  # names of the signals it waits for, sorted
    # Names of the signals its throw events threw in this call, in order: the instance caught its own already;
    # the services broadcast them to the others (and start the processes they start).
    thrown_signals: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoadedSpec:
    """A definition's spec restored into SpiffWorkflow's objects, shared by every instance run with it."""

    spec: dict  # ParsedDefinition.spec, as stored
    process: Any  # SpiffWorkflow's BpmnProcessSpec
    subprocesses: dict  # name -> BpmnProcessSpec


def load_spec(spec: dict) -> LoadedSpec:
    """Restore a stored spec into SpiffWorkflow's objects, once, for any number of runs."""
    if isinstance(spec, LoadedSpec):
        return spec
    # SpiffWorkflow writes into the dicts it restores specs from; it gets copies, never the stored spec.
    return LoadedSpec(
        spec=spec,
        process=SERIALIZER.from_dict(_copy_json(spec["spec"])),
        subprocesses={name: SERIALIZER.from_dict(_copy_json(sub)) for name, sub in spec["subprocess_specs"].items()},
    )


# --- running ------------------------------------------------------------------------------------------------


def start(*, spec: dict | LoadedSpec, variables: dict, now: datetime) -> EngineRun:
    """Start an instance of the definition with `variables` and run it to its first wait state."""
    _check_variables(variables)
    loaded = load_spec(spec)
    workflow = _new_workflow(loaded, now=now)
    # The root task's data is what every first task inherits.
    workflow.task_tree.data.update(_copy_json(variables))
    _run_until_waiting(workflow)
    return _outcome(workflow, loaded.spec, open_before=set())


def complete_task(
    *, spec: dict | LoadedSpec, state: dict, engine_task_id: str, variables: dict, now: datetime
) -> EngineRun:
    """Complete an open user task with the variables its form collected, and run to the next wait state."""
    loaded = load_spec(spec)
    spec = loaded.spec
    workflow = _restore(loaded, state, now=now)
    task = _open_user_task(workflow, spec, engine_task_id)
    info = _user_task_info(spec, task.task_spec.bpmn_id)
    _check_variables(variables)
    errors = validate_form_variables(form_fields=info.form_fields, variables=variables)
    if errors:
        raise TaskDataError(
            f"the variables do not fit the form of '{info.name}'", element_id=info.id, field_errors=errors
        )
    open_before = _open_task_ids(workflow, spec)
    task.data.update(_copy_json(variables))
    multi_instance.detach_element_variable(task)
    try:
        task.run()
    except EngineError:
        raise
    except SpiffWorkflowException as exc:
        raise EngineError(str(exc), element_id=info.id) from exc
    _run_until_waiting(workflow)
    return _outcome(workflow, spec, open_before=open_before - {str(task.id)})


def complete_external_task(
    *, spec: dict | LoadedSpec, state: dict, engine_task_id: str, variables: dict, now: datetime
) -> EngineRun:
    """Complete an open external task with the variables its worker sent, and run to the next wait state."""
    loaded = load_spec(spec)
    spec = loaded.spec
    workflow = _restore(loaded, state, now=now)
    task = _open_task(workflow, engine_task_id, _external_tasks(spec), kind="external task")
    _check_variables(variables)
    open_before = _open_task_ids(workflow, spec)
    task.data.update(_copy_json(variables))
    try:
        task.run()
    except EngineError:
        raise
    except SpiffWorkflowException as exc:
        raise EngineError(str(exc), element_id=task.task_spec.bpmn_id) from exc
    _run_until_waiting(workflow)
    return _outcome(workflow, spec, open_before=open_before - {str(task.id)})


def throw_error(
    *,
    spec: dict | LoadedSpec,
    state: dict,
    engine_task_id: str,
    error_code: str,
    error_message: str,
    variables: dict,
    now: datetime,
) -> EngineRun:
    """Raise the BPMN error `error_code` at an open external task, as its worker reports it: the nearest error
    boundary event that catches the code (one naming it before a catch-all; on the task, then on each enclosing
    subprocess) interrupts what it is attached to and the instance follows its path, with `variables` (and the
    code and message, into the variables its camunda:errorCodeVariable / errorMessageVariable name) merged where
    it is caught. ErrorNotCaught when nothing catches it."""
    loaded = load_spec(spec)
    spec = loaded.spec
    workflow = _restore(loaded, state, now=now)
    task = _open_task(workflow, engine_task_id, _external_tasks(spec), kind="external task")
    _check_variables(variables)
    open_before = _open_task_ids(workflow, spec)
    catcher = _error_catcher(workflow, task, error_code)
    if catcher is None:
        definition = event_subprocesses.error_catcher(workflow, error_code)
        if definition is None:
            raise ErrorNotCaught(
                f"no error boundary event or error event subprocess catches the BPMN error '{error_code}' raised here",
                element_id=task.task_spec.bpmn_id,
            )
        before = set(workflow.subprocesses)
        try:
            workflow.catch(BpmnEvent(definition, payload={}))  # starts the event subprocess
        except SpiffWorkflowException as exc:
            raise EngineError(str(exc), element_id=task.task_spec.bpmn_id) from exc
        event_subprocesses.seed(workflow, before, {**_current_variables(workflow), **_copy_json(variables)})
        _run_until_waiting(workflow)
        return _outcome(workflow, spec, open_before=open_before)
    data = _copy_json(variables)
    names = spec.get("error_variables", {}).get(catcher.task_spec.bpmn_id, {})
    if names.get("code"):
        data[names["code"]] = error_code
    if names.get("message"):
        data[names["message"]] = error_message
    catcher.data.update(data)
    event = BpmnEvent(catcher.task_spec.event_definition, payload={})
    try:
        # As SpiffWorkflow's event manager delivers an event to a task that catches it.
        catcher.task_spec.catch(catcher, event)
        catcher.task_spec._update(catcher)
    except SpiffWorkflowException as exc:
        raise EngineError(str(exc), element_id=catcher.task_spec.bpmn_id) from exc
    _run_until_waiting(workflow)
    return _outcome(workflow, spec, open_before=open_before)


def _error_catcher(workflow: BpmnWorkflow, task, error_code: str):
    """The waiting error boundary event nearest `task` that catches `error_code`: on the task, then on each
    subprocess around it; at each level one naming the code wins over a catch-all (no errorRef)."""
    node = task
    while node is not None:
        if node.parent is not None and isinstance(node.parent.task_spec, BoundaryEventSplit):
            catching = [
                sibling
                for sibling in node.parent.children
                if isinstance(sibling.task_spec, BoundaryEvent)
                and sibling.state == TaskState.WAITING
                and isinstance(sibling.task_spec.event_definition, ErrorEventDefinition)
                and sibling.task_spec.event_definition.code in (None, error_code)
            ]
            if catching:
                return min(catching, key=lambda boundary: boundary.task_spec.event_definition.code is None)
        parent_id = node.workflow.parent_task_id
        node = workflow.get_task_from_id(parent_id) if parent_id is not None else None
    return None


def complete_call(
    *, spec: dict | LoadedSpec, state: dict, engine_task_id: str, variables: dict, now: datetime
) -> EngineRun:
    """Complete a call activity with the variables its child process ended with (mapped by its camunda:out
    entries), and run to the next wait state."""
    loaded = load_spec(spec)
    spec = loaded.spec
    workflow = _restore(loaded, state, now=now)
    task = next((t for t in _open_calls(workflow, spec) if str(t.id) == str(engine_task_id)), None)
    if task is None:
        raise TaskNotReady(f"task {engine_task_id} is not a call activity waiting for its process")
    _check_variables(variables)
    open_before = _open_task_ids(workflow, spec)
    task.data.update(
        _copy_json(call_activity.mapped(spec["call_activities"][task.task_spec.bpmn_id]["out"], variables))
    )
    try:
        task.run()
    except EngineError:
        raise
    except SpiffWorkflowException as exc:
        raise EngineError(str(exc), element_id=task.task_spec.bpmn_id) from exc
    _run_until_waiting(workflow)
    return _outcome(workflow, spec, open_before=open_before - {str(task.id)})


def fire_due_timers(*, spec: dict | LoadedSpec, state: dict, now: datetime) -> EngineRun:
    """Fire every timer due at `now` and run on; a no-op (same open tasks) when none is due."""
    loaded = load_spec(spec)
    spec = loaded.spec
    workflow = _restore(loaded, state, now=now)
    open_before = _open_task_ids(workflow, spec)
    _run_until_waiting(workflow)
    return _outcome(workflow, spec, open_before=open_before)


def cancel(*, spec: dict | LoadedSpec, state: dict) -> EngineRun:
    """Cancel the instance; closed_task_ids are the user tasks that were open."""
    loaded = load_spec(spec)
    spec = loaded.spec
    # Cancelling reads no timers, so the clock is irrelevant; any aware time will do.
    workflow = _restore(loaded, state, now=datetime.now(UTC))
    open_before = _open_task_ids(workflow, spec)
    workflow.cancel()
    return _outcome(workflow, spec, open_before=open_before)


def deliver_message(
    *, spec: dict | LoadedSpec, state: dict, message_name: str, variables: dict, now: datetime
) -> EngineRun:
    """Deliver the message `message_name` with `variables` (merged into the process variables where it is
    caught) to the element waiting for it, and run to the next wait state. MessageNotAwaited if none waits."""
    _check_variables(variables)
    loaded = load_spec(spec)
    workflow = _restore(loaded, state, now=now)
    open_before = _open_task_ids(workflow, loaded.spec)
    _catch_message(workflow, message_name, variables)
    return _outcome(workflow, loaded.spec, open_before=open_before)


def start_by_message(*, spec: dict | LoadedSpec, message_name: str, variables: dict, now: datetime) -> EngineRun:
    """Start an instance through its message start event named `message_name`, with the message's variables
    as its first variables. MessageNotAwaited if the process has no such start event."""
    _check_variables(variables)
    loaded = load_spec(spec)
    workflow = _new_workflow(loaded, now=now)
    _run_until_waiting(workflow)  # to the start events, which wait
    _catch_message(workflow, message_name, variables)
    return _outcome(workflow, loaded.spec, open_before=set())


def start_by_signal(*, spec: dict | LoadedSpec, signal_name: str, variables: dict, now: datetime) -> EngineRun:
    """Start an instance through its signal start event named `signal_name`, with the signal's variables as its
    first variables. MessageNotAwaited if the process has no such start event."""
    _check_variables(variables)
    loaded = load_spec(spec)
    workflow = _new_workflow(loaded, now=now)
    _run_until_waiting(workflow)  # to the start events, which wait
    _catch(workflow, SignalEventDefinition, signal_name, variables)
    return _outcome(workflow, loaded.spec, open_before=set())


def deliver_signal(
    *, spec: dict | LoadedSpec, state: dict, signal_name: str, variables: dict, now: datetime
) -> EngineRun:
    """Deliver the signal `signal_name` with `variables` to every element of the instance waiting for it (catch
    and boundary events), and run on. MessageNotAwaited if none waits."""
    _check_variables(variables)
    loaded = load_spec(spec)
    workflow = _restore(loaded, state, now=now)
    open_before = _open_task_ids(workflow, loaded.spec)
    _catch(workflow, SignalEventDefinition, signal_name, variables)
    return _outcome(workflow, loaded.spec, open_before=open_before)


def _catch_message(workflow: BpmnWorkflow, message_name: str, variables: dict) -> None:
    _catch(workflow, MessageEventDefinition, message_name, variables)


def _catch(workflow: BpmnWorkflow, kind: type, name: str, variables: dict) -> None:
    noun = "signal" if kind is SignalEventDefinition else "message"
    waiting = _catchers(workflow, kind, name)
    starting = event_subprocesses.listening(workflow, noun, name)
    if not waiting and not starting:
        raise MessageNotAwaited(f"nothing in this process waits for the {noun} '{name}'")
    # SpiffWorkflow copies a payload into the data only into a variable a spiffworkflow extension names, which
    # Camunda-style models have not: the variables go into the data of the elements that catch the event,
    # which pass it on as they complete.
    for task in waiting:
        task.data.update(_copy_json(variables))
    if waiting:
        definition = waiting[0].task_spec.event_definition
    else:
        definition = event_subprocesses.start_definition(workflow, starting[0])
    before = set(workflow.subprocesses)
    try:
        # An event subprocess waiting for it starts too (SpiffWorkflow's event manager).
        workflow.send_event(BpmnEvent(definition, payload={}))
    except SpiffWorkflowException as exc:
        raise EngineError(str(exc), element_id=bpmn_id(waiting[0]) if waiting else starting[0]) from exc
    event_subprocesses.seed(workflow, before, {**_current_variables(workflow), **_copy_json(variables)})
    _run_until_waiting(workflow)


def _current_variables(workflow: BpmnWorkflow) -> dict:
    """The process variables as the latest step left them."""
    if workflow.is_completed():
        return workflow.data
    return workflow.last_task.data if workflow.last_task is not None else workflow.task_tree.data


def _catchers(workflow: BpmnWorkflow, kind: type, name: str | None = None) -> list:
    """The instance's waiting elements (catch events, receive tasks, boundary events, start events) that catch
    an event of `kind` (named `name`, or any)."""
    return [
        task
        for task in workflow.get_tasks(state=TaskState.WAITING)
        if isinstance(getattr(task.task_spec, "event_definition", None), kind)
        and name in (None, task.task_spec.event_definition.name)
    ]


def _waiting_messages(workflow: BpmnWorkflow) -> list[str]:
    """The names of the messages the instance would catch now."""
    return sorted(
        {task.task_spec.event_definition.name for task in _catchers(workflow, MessageEventDefinition)}
        | event_subprocesses.listening_names(workflow, "message")
    )


def _waiting_signals(workflow: BpmnWorkflow) -> list[str]:
    """The names of the signals the instance would catch now."""
    return sorted(
        {task.task_spec.event_definition.name for task in _catchers(workflow, SignalEventDefinition)}
        | event_subprocesses.listening_names(workflow, "signal")
    )


ELEMENT_ACTIVE = "active"
ELEMENT_COMPLETED = "completed"


def element_states(*, spec: dict | LoadedSpec, state: dict) -> dict[str, str]:
    """Where an instance stands, per BPMN element id: ELEMENT_ACTIVE for an open user task, a running subprocess,
    a waiting timer or an element waiting for a message, ELEMENT_COMPLETED for an element the instance has passed. Elements not reached, skipped
    or cancelled are left out. An element visited again (a loop) is active if any visit is."""
    # Reading states fires no timer, so the clock is irrelevant; any aware time will do.
    workflow = _restore(load_spec(spec), state, now=datetime.now(UTC))
    states: dict[str, str] = {}
    for task in workflow.get_tasks():
        bpmn_id = getattr(task.task_spec, "bpmn_id", None)
        if not bpmn_id:
            continue  # SpiffWorkflow's own bookkeeping tasks (root, boundary-event split and join)
        waiting_event = task.state == TaskState.WAITING and isinstance(
            getattr(task.task_spec, "event_definition", None),
            (TimerEventDefinition, MessageEventDefinition, SignalEventDefinition),
        )
        if waiting_event or task.state in (TaskState.READY, TaskState.STARTED):
            states[bpmn_id] = ELEMENT_ACTIVE
        elif task.state == TaskState.COMPLETED:
            states.setdefault(bpmn_id, ELEMENT_COMPLETED)
    return states


def validate_form_variables(*, form_fields: list[FormField], variables: dict) -> dict[str, str]:
    """Check variables against a task's form; returns {field id: message} for each field that does not fit.

    Variables the form does not declare are let through: a process may carry data beyond its forms.
    """
    errors: dict[str, str] = {}
    for form_field in form_fields:
        value = variables.get(form_field.id)
        if value is None or value == "":
            if form_field.required:
                errors[form_field.id] = "This field is required."
            continue
        if form_field.sensitive:
            continue  # checked in plaintext before it was sealed (tasks/bpmn/forms.py); the engine holds it sealed
        if form_field.type in ("string", "text") and not isinstance(value, str):
            errors[form_field.id] = "Must be text."
        elif form_field.type == "boolean" and not isinstance(value, bool):
            errors[form_field.id] = "Must be true or false."
        elif form_field.type == "long" and (isinstance(value, bool) or not isinstance(value, int)):
            errors[form_field.id] = "Must be a whole number."
        elif form_field.type == "enum" and value not in {option.id for option in form_field.enum_values}:
            allowed = ", ".join(option.id for option in form_field.enum_values)
            errors[form_field.id] = f"Must be one of: {allowed}."
        elif form_field.type == "date" and not _is_iso_date(value):
            errors[form_field.id] = "Must be a date (YYYY-MM-DD)."
    return errors


def _is_iso_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _aware(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC)


def _check_variables(variables: dict) -> None:
    if not isinstance(variables, dict):
        raise TaskDataError("variables must be a JSON object", field_errors={})
    errors = {}
    for key in variables:
        # Names starting with '_' are reserved: '__builtins__' in the data would replace the sandbox's builtins.
        if not isinstance(key, str) or key.startswith("_"):
            errors[str(key)] = "Variable names must be text and may not start with '_'."
    if not errors and (problem := _non_json_value(variables)):
        raise TaskDataError(f"variables must be JSON values: {problem}", field_errors={})
    if errors:
        raise TaskDataError("invalid variable names", field_errors=errors)


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON data, so the engine never shares mutable objects with the caller."""
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy_json(item) for item in value]
    return value


def _new_workflow(loaded: LoadedSpec, *, now: datetime) -> BpmnWorkflow:
    engine = SandboxedScriptEngine(now=_aware(now))
    engine.event_subprocesses = loaded.spec.get("event_subprocesses", {})
    return BpmnWorkflow(event_subprocesses.process_spec(loaded), dict(loaded.subprocesses), script_engine=engine)


def _restore(loaded: LoadedSpec, state: dict, *, now: datetime) -> BpmnWorkflow:
    if not isinstance(state, dict) or "tasks" not in state or SERIALIZER.VERSION_KEY not in state:
        raise EngineError("the engine state is missing or not from this engine")
    # SpiffWorkflow pops entries out of the subprocess mapping while restoring; it gets a copy, never the caller's
    # stored data. (Task dicts it only reads.)
    serialised = {**state, "subprocesses": dict(state.get("subprocesses", {}))}
    if state[SERIALIZER.VERSION_KEY] == SERIALIZER.VERSION:
        del serialised[SERIALIZER.VERSION_KEY]
        workflow = SERIALIZER.from_dict(
            serialised, specs=(event_subprocesses.process_spec(loaded), loaded.subprocesses)
        )
    else:
        # SpiffWorkflow's migrations may rewrite the specs too: they get the stored spec's dicts (copies, as they
        # rewrite nested dicts in place) and restore them along with the state.
        serialised = _copy_json(
            {**serialised, "spec": loaded.spec["spec"], "subprocess_specs": loaded.spec["subprocess_specs"]}
        )
        SERIALIZER.migrate(serialised)  # also drops the version key
        workflow = SERIALIZER.from_dict(serialised)
    workflow.script_engine = SandboxedScriptEngine(now=_aware(now))
    workflow.script_engine.event_subprocesses = loaded.spec.get("event_subprocesses", {})
    event_subprocesses.reconnect(workflow)
    return workflow


def _run_until_waiting(workflow: BpmnWorkflow) -> None:
    steps = 0

    def count_step(task) -> None:
        nonlocal steps
        steps += 1
        if steps > MAX_AUTOMATIC_STEPS:
            raise EngineError(
                f"more than {MAX_AUTOMATIC_STEPS} automatic steps without reaching a wait state; "
                "the model probably loops",
                element_id=bpmn_id(task),
            )

    def note_signal_thrown(task) -> None:
        definition = getattr(task.task_spec, "event_definition", None)
        if isinstance(task.task_spec, ThrowingEvent) and isinstance(definition, SignalEventDefinition):
            workflow.script_engine.thrown_signals.append(definition.name)

    try:
        workflow.do_engine_steps(will_complete_task=count_step, did_complete_task=note_signal_thrown)
        # do_engine_steps refreshes timers last, and a timer that fires then is READY but not yet run.
        # An interrupting event subprocess that started cancels the rest of the process; a process whose flow is
        # done lets go of the event subprocesses that did not start (event_subprocesses.settle).
        while workflow.get_next_task(state=TaskState.READY, manual=False) is not None or event_subprocesses.settle(
            workflow
        ):
            workflow.do_engine_steps(will_complete_task=count_step, did_complete_task=note_signal_thrown)
        # Events nothing in the instance caught (a thrown signal): the services broadcast thrown signals (above);
        # SpiffWorkflow would otherwise keep them in the state.
        workflow.get_events()
    except EngineError:
        raise
    except SpiffWorkflowException as exc:
        task_spec = getattr(exc, "task_spec", None)
        raise EngineError(str(exc), element_id=getattr(task_spec, "bpmn_id", None)) from exc


def _open_user_tasks(workflow: BpmnWorkflow, spec: dict):
    user_tasks = spec["user_tasks"]
    return [
        task for task in workflow.get_tasks(state=TaskState.READY, manual=True) if task.task_spec.bpmn_id in user_tasks
    ]


def _external_tasks(spec: dict) -> dict:
    return spec.get("external_tasks", {})  # definitions deployed before external tasks have none


def _open_external_tasks(workflow: BpmnWorkflow, spec: dict):
    external = _external_tasks(spec)
    if not external:
        return []
    return [
        task for task in workflow.get_tasks(state=TaskState.READY, manual=True) if task.task_spec.bpmn_id in external
    ]


def _open_task_ids(workflow: BpmnWorkflow, spec: dict) -> set[str]:
    """The open user and external tasks and the call activities waiting for their child processes."""
    return {
        str(task.id)
        for task in [
            *_open_user_tasks(workflow, spec),
            *_open_external_tasks(workflow, spec),
            *_open_calls(workflow, spec),
        ]
    }


def _open_task(workflow: BpmnWorkflow, engine_task_id: str, of: dict, *, kind: str):
    try:
        task_uuid = UUID(str(engine_task_id))
    except ValueError:
        raise TaskNotReady(f"'{engine_task_id}' is not a task id") from None
    try:
        task = workflow.get_task_from_id(task_uuid)
    except SpiffWorkflowException:
        task = None
    if task is None:
        raise TaskNotReady(f"task {engine_task_id} is not part of this process instance")
    if task.state != TaskState.READY or task.task_spec.bpmn_id not in of:
        raise TaskNotReady(
            f"task {engine_task_id} is not an open {kind} (it is {TaskState.get_name(task.state)})",
            element_id=task.task_spec.bpmn_id,
        )
    return task


def _open_calls(workflow: BpmnWorkflow, spec: dict):
    calls = spec.get("call_activities", {})
    return [task for task in workflow.get_tasks(state=TaskState.READY, manual=True) if task.task_spec.bpmn_id in calls]


def _open_user_task(workflow: BpmnWorkflow, spec: dict, engine_task_id: str):
    return _open_task(workflow, engine_task_id, spec["user_tasks"], kind="user task")


def _user_task_info(spec: dict, bpmn_id: str) -> UserTaskInfo:
    info = dict(spec["user_tasks"][bpmn_id])
    info["form_fields"] = [
        FormField(**{**f, "enum_values": [EnumValue(**value) for value in f["enum_values"]]})
        for f in info["form_fields"]
    ]
    return UserTaskInfo(**info)


def _outcome(workflow: BpmnWorkflow, spec: dict, *, open_before: set[str]) -> EngineRun:
    ready = []
    for task in _open_user_tasks(workflow, spec):
        info = _user_task_info(spec, task.task_spec.bpmn_id)
        ready.append(
            ReadyUserTask(
                engine_task_id=str(task.id),
                task_definition_key=info.id,
                name=info.name,
                queue_name=info.queue_name,
                candidate_groups=list(info.candidate_groups),
                priority=info.priority,
                required_skills=list(info.required_skills),
                form_fields=info.form_fields,
                sla_hours=info.sla_hours,
                documentation=info.documentation,
                instance_variables=_copy_json(multi_instance.instance_variables(task)),
            )
        )
    calls = []
    for task in _open_calls(workflow, spec):
        info = spec["call_activities"][task.task_spec.bpmn_id]
        calls.append(
            ReadyCall(
                engine_task_id=str(task.id),
                element_id=task.task_spec.bpmn_id,
                called_element=info["called_element"],
                version=info["version"],
                variables=_copy_json(call_activity.mapped(info["in"], task.data)),
            )
        )
    external = [
        ReadyExternalTask(
            engine_task_id=str(task.id),
            activity_id=task.task_spec.bpmn_id,
            name=_external_tasks(spec)[task.task_spec.bpmn_id]["name"],
            topic_name=_external_tasks(spec)[task.task_spec.bpmn_id]["topic_name"],
            priority=_external_tasks(spec)[task.task_spec.bpmn_id]["priority"],
        )
        for task in _open_external_tasks(workflow, spec)
    ]
    open_now = [task.engine_task_id for task in ready] + [task.engine_task_id for task in external]
    open_calls = {call.engine_task_id for call in calls}
    closed = sorted(open_before - set(open_now) - open_calls)
    completed = workflow.is_completed() and bool(workflow.success)
    variables = _current_variables(workflow)

    state = SERIALIZER.to_dict(workflow)  # without the specs (spiff.py)
    state[SERIALIZER.VERSION_KEY] = SERIALIZER.VERSION
    return EngineRun(
        state=state,
        ready_user_tasks=ready,
        completed=completed,
        variables=_copy_json(variables),
        closed_task_ids=closed,
        loop_done_task_ids=[task_id for task_id in closed if multi_instance.closed_by_its_loop(workflow, task_id)],
        opened_task_ids=[task_id for task_id in open_now if task_id not in open_before],
        next_timer_due_at=_next_timer_due_at(workflow),
        ready_external_tasks=external,
        ready_calls=calls,
        waiting_messages=[] if workflow.is_completed() else _waiting_messages(workflow),
        waiting_signals=[] if workflow.is_completed() else _waiting_signals(workflow),
        thrown_signals=list(getattr(workflow.script_engine, "thrown_signals", [])),
    )


def _next_timer_due_at(workflow: BpmnWorkflow) -> datetime | None:
    due = [
        as_utc(task.internal_data["event_value"])
        for task in workflow.get_tasks(state=TaskState.WAITING)
        if isinstance(getattr(task.task_spec, "event_definition", None), TimerEventDefinition)
        and isinstance(task.internal_data.get("event_value"), str)
    ]
    return min(due) if due else None
