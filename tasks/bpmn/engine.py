"""The BPMN engine: parses workflow definitions and runs process instances on SpiffWorkflow, with no database.

This is the only module that imports SpiffWorkflow. Services load rows, call one function here, and store
what it returns; every value in and out is plain, JSON-serialisable data.

Interface (all functions keyword-only)::

    parse_definition(*, bpmn_xml: str) -> ParsedDefinition
    start(*, spec: dict, variables: dict, now: datetime) -> EngineRun
    complete_task(*, spec: dict, state: dict, engine_task_id: str, variables: dict, now: datetime) -> EngineRun
    fire_due_timers(*, spec: dict, state: dict, now: datetime) -> EngineRun
    cancel(*, spec: dict, state: dict) -> EngineRun
    read_bpmn_document(*, bpmn_xml: str) -> lxml Element   the XML, parsed safely (for tasks/bpmn/diagram.py)
    element_states(*, spec: dict, state: dict) -> dict[str, str]   BPMN element id -> ELEMENT_ACTIVE | ELEMENT_COMPLETED
    validate_form_variables(*, form_fields: list[FormField], variables: dict) -> dict[str, str]

    ParsedDefinition(process_key, name, spec, user_tasks: list[UserTaskInfo], queue_names: list[str],
                     start_queue_names: list[str])
    UserTaskInfo(id, name, queue_name, candidate_groups, priority, required_skills, form_fields, sla_hours,
                 documentation)
    FormField(id, label, type, required, enum_values: list[EnumValue]);  EnumValue(id, name)
    EngineRun(state, ready_user_tasks: list[ReadyUserTask], completed, variables, closed_task_ids,
              opened_task_ids, next_timer_due_at)
    ReadyUserTask(engine_task_id, task_definition_key, name, queue_name, candidate_groups, priority,
                  required_skills, form_fields, sla_hours, documentation)

    EngineError(detail, element_id)         anything that stops the engine; the base of:
      BpmnError(detail, element_id, line)   the definition is refused (parse time)
      ScriptError(detail, element_id)       an expression or script was refused or failed (run time)
        ScriptLimitExceeded(detail, element_id, kind)  it was stopped at the CPU ("cpu") or memory ("memory") bound
      TaskNotReady(detail, element_id)      complete_task was given a task that is not open
      TaskDataError(detail, element_id, field_errors)  the variables do not fit the task's form

`spec` is ParsedDefinition.spec, stored once per definition version; `state` is EngineRun.state, stored per
instance. The state never contains the spec, and no function mutates the dicts it is given, so a failed call
leaves the caller's stored state as it was.

What a model may contain (anything else is refused with the element's id and line):
  start events and end events without event definitions; userTask; scriptTask (Python); exclusive, inclusive
  and parallel gateways; sequence flows; lanes; embedded subProcess; boundary timer events (interrupting or
  not) and intermediate timer catch events, with timeDuration or timeDate; documentation, text annotations,
  associations and groups; one pool (collaboration participant) around the executable process.

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
             Forms panel writes (`text` is our addition: a multi-line string).

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

import builtins
import dataclasses
import keyword
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from . import script_sandbox
from .script_sandbox import SAFE_BUILTINS
from .script_sandbox import non_json_value as _non_json_value
from .script_sandbox import unsafe_source as _unsafe_source

__all__ = [
    "BpmnError",
    "ELEMENT_ACTIVE",
    "ELEMENT_COMPLETED",
    "EngineError",
    "EngineRun",
    "EnumValue",
    "FormField",
    "ParsedDefinition",
    "ReadyUserTask",
    "SAFE_BUILTINS",
    "ScriptError",
    "ScriptLimitExceeded",
    "TaskDataError",
    "TaskNotReady",
    "UserTaskInfo",
    "cancel",
    "complete_task",
    "element_states",
    "fire_due_timers",
    "parse_definition",
    "read_bpmn_document",
    "start",
    "validate_form_variables",
]

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
FLOWABLE_NS = "http://flowable.org/bpmn"

MIN_PRIORITY = 0
MAX_PRIORITY = 100
FORM_FIELD_TYPES = ("string", "text", "boolean", "enum", "date", "long")

# A model stuck in a loop of automatic steps (scripts, gateways) must fail, not hang a web worker.
MAX_AUTOMATIC_STEPS = 10_000
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_MAX_QUEUE_NAME_LENGTH = 100  # queues.WorkflowQueue.queue_name
_MAX_SKILL_LENGTH = 50  # entitlements skill codes
_ISO_LITERAL_SHAPE = re.compile(r"P[0-9A-Z.,]+|\d{4}-\d\d-\d\d([T ][0-9:.]+)?(Z|[+-][0-9:]+)?")
_PYTHON_SCRIPT_FORMATS = {None, "", "python", "text/x-python", "text/python"}


# --- errors -------------------------------------------------------------------------------------------------


class EngineError(Exception):
    """The engine could not do what was asked; `detail` says why for a human, `element_id` names the BPMN element."""

    def __init__(self, detail: str, *, element_id: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.element_id = element_id

    def __str__(self) -> str:
        return f"{self.element_id}: {self.detail}" if self.element_id else self.detail


class BpmnError(EngineError):
    """A definition is refused: not XML, not BPMN 2.0, or uses something this engine does not run."""

    def __init__(self, detail: str, *, element_id: str | None = None, line: int | None = None) -> None:
        super().__init__(detail, element_id=element_id)
        self.line = line

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return super().__str__() + where


class ScriptError(EngineError):
    """A condition, timer expression or script was refused by the sandbox or raised while running."""


class ScriptLimitExceeded(ScriptError):
    """A condition, timer expression or script was stopped at its CPU-time or memory bound; `kind` says which."""

    def __init__(self, detail: str, *, element_id: str | None = None, kind: str) -> None:
        super().__init__(detail, element_id=element_id)
        self.kind = kind


class TaskNotReady(EngineError):
    """The task to complete is not an open user task of this process instance."""


class TaskDataError(EngineError):
    """The variables given to complete a task do not fit its form; `field_errors` maps field id to message."""

    def __init__(self, detail: str, *, element_id: str | None = None, field_errors: dict[str, str]) -> None:
        super().__init__(detail, element_id=element_id)
        self.field_errors = field_errors


# --- data in and out ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnumValue:
    id: str
    name: str


@dataclass(frozen=True)
class FormField:
    id: str
    label: str
    type: str  # one of FORM_FIELD_TYPES
    required: bool = False
    enum_values: list[EnumValue] = field(default_factory=list)


@dataclass(frozen=True)
class UserTaskInfo:
    """A userTask of a definition, as services need it to make a workflow task."""

    id: str
    name: str
    queue_name: str
    candidate_groups: list[str]
    priority: int | None  # None: the model leaves it to the queue's default
    required_skills: list[str]
    form_fields: list[FormField]
    sla_hours: float | None  # None: the model leaves it to the definition's sla_config
    documentation: str = ""


@dataclass(frozen=True)
class ParsedDefinition:
    process_key: str
    name: str
    spec: dict  # stored once per definition version; handed back to every run function
    user_tasks: list[UserTaskInfo]
    queue_names: list[str]  # every queue the model routes to, in model order
    start_queue_names: list[str] = dataclasses.field(default_factory=list)  # queues of the first user tasks


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


# --- parsing ------------------------------------------------------------------------------------------------


def parse_definition(*, bpmn_xml: str) -> ParsedDefinition:
    """Parse and validate a BPMN 2.0 document; raise BpmnError naming the first thing this engine cannot run."""
    root = read_bpmn_document(bpmn_xml=bpmn_xml)
    _check_schema(root)
    process = _executable_process(root)
    _check_supported_elements(root, process)
    _check_sequence_flows(process)
    _check_expressions(process)
    user_tasks = _read_user_tasks(process)
    spec, subprocess_specs = _spiff_specs(root, process)

    queue_names: list[str] = []
    for task in user_tasks:
        if task.queue_name not in queue_names:
            queue_names.append(task.queue_name)
    first = set(_first_user_task_ids(process))
    start_queue_names: list[str] = []
    for task in user_tasks:
        if task.id in first and task.queue_name not in start_queue_names:
            start_queue_names.append(task.queue_name)
    return ParsedDefinition(
        process_key=process.get("id"),
        name=_process_name(root, process),
        spec={
            _SERIALIZER.VERSION_KEY: _SERIALIZER.VERSION,
            "spec": _SERIALIZER.to_dict(spec),
            "subprocess_specs": {name: _SERIALIZER.to_dict(sub) for name, sub in subprocess_specs.items()},
            "user_tasks": {task.id: dataclasses.asdict(task) for task in user_tasks},
            "start_queue_names": start_queue_names,
        },
        user_tasks=user_tasks,
        queue_names=queue_names,
        start_queue_names=start_queue_names,
    )


def _first_user_task_ids(container: etree._Element) -> list[str]:
    """The userTasks a new instance can wait in first: reached from the start events without passing another
    userTask. An embedded subprocess counts by its own first userTasks; one with none is passed through."""
    nodes = {child.get("id"): child for child in _elements(container) if child.get("id")}
    outgoing: dict[str, list[str]] = {}
    for flow in container.iterchildren(_bpmn("sequenceFlow")):
        outgoing.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
    pending = [child.get("id") for child in container.iterchildren(_bpmn("startEvent"))]
    seen: set[str] = set()
    found: list[str] = []
    while pending:
        node_id = pending.pop(0)
        if node_id in seen or node_id not in nodes:
            continue
        seen.add(node_id)
        node = nodes[node_id]
        name = _local(node)
        if name == "userTask":
            found.append(node_id)
            continue
        if name == "subProcess":
            inner = _first_user_task_ids(node)
            if inner:
                found.extend(inner)
                continue
        pending.extend(outgoing.get(node_id, []))
    return found


def _bpmn(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _refuse(detail: str, element: etree._Element) -> BpmnError:
    """A BpmnError pointing at `element`'s line and id."""
    return BpmnError(detail, element_id=_nearest_id(element), line=element.sourceline)


def _nearest_id(element: etree._Element) -> str | None:
    """The element's id, or its nearest ancestor's: event definitions and expressions often have none."""
    node = element
    while node is not None:
        if node.get("id"):
            return node.get("id")
        node = node.getparent()
    return None


def read_bpmn_document(*, bpmn_xml: str) -> etree._Element:
    """Parse stored or uploaded BPMN XML safely: no network, no entities, no DTD. BpmnError when refused."""
    if not isinstance(bpmn_xml, str) or not bpmn_xml.strip():
        raise BpmnError("the definition is empty, not an XML document")
    # The text is already decoded, so the parser must ignore any encoding the XML declaration claims.
    # Entities and DTDs stay unresolved: a deployed file must not read local files or expand entity bombs.
    parser = etree.XMLParser(
        encoding="utf-8", resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(bpmn_xml.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise BpmnError(f"not well-formed XML: {exc.msg}", line=exc.lineno) from exc
    if root.getroottree().docinfo.doctype:
        raise BpmnError("a DOCTYPE is not allowed in a BPMN definition", line=1)
    if root.tag != _bpmn("definitions"):
        raise BpmnError(
            f"not a BPMN 2.0 document: the root element is <{_local(root)}> in namespace "
            f"'{etree.QName(root).namespace or ''}', expected <definitions> in '{BPMN_NS}'",
            line=root.sourceline,
        )
    return root


def _check_schema(root: etree._Element) -> None:
    # SpiffWorkflow's validator checks against the BPMN 2.0 XSD (plus its own extension schema).
    try:
        VALIDATOR.validate(root)
    except ValidationException as exc:
        raise BpmnError(f"not valid BPMN 2.0: {exc}", line=exc.line_number or None) from exc


def _executable_process(root: etree._Element) -> etree._Element:
    executable = [p for p in root.iterchildren(_bpmn("process")) if p.get("isExecutable") == "true"]
    if not executable:
        raise BpmnError('no executable process: mark the process isExecutable="true"', line=root.sourceline)
    if len(executable) > 1:
        raise _refuse(
            f"{len(executable)} executable processes; a definition must have exactly one", executable[1]
        )
    return executable[0]


def _process_name(root: etree._Element, process: etree._Element) -> str:
    if process.get("name"):
        return process.get("name")
    for participant in root.iter(_bpmn("participant")):
        if participant.get("processRef") == process.get("id") and participant.get("name"):
            return participant.get("name")
    return process.get("id")


# What each supported element may contain. The allow-list is explicit so that a model using anything else
# (message events, service tasks, loops, data associations...) is refused at deploy time instead of stalling.
_DECORATIONS = {"documentation", "extensionElements"}
_ARTIFACTS = _DECORATIONS | {"textAnnotation", "association", "group"}
_NODE_CHILDREN = _DECORATIONS | {"incoming", "outgoing"}
_FLOW_ELEMENTS: dict[str, set[str]] = {
    "startEvent": _NODE_CHILDREN,
    "endEvent": _NODE_CHILDREN,
    "userTask": _NODE_CHILDREN,
    "scriptTask": _NODE_CHILDREN | {"script"},
    "exclusiveGateway": _NODE_CHILDREN,
    "inclusiveGateway": _NODE_CHILDREN,
    "parallelGateway": _NODE_CHILDREN,
    "boundaryEvent": _NODE_CHILDREN | {"timerEventDefinition"},
    "intermediateCatchEvent": _NODE_CHILDREN | {"timerEventDefinition"},
    "sequenceFlow": _DECORATIONS | {"conditionExpression"},
}
_TIMER_CHILDREN = _DECORATIONS | {"timeDuration", "timeDate"}
_DEFINITIONS_CHILDREN = _DECORATIONS | {"process", "collaboration", "category"}
_COLLABORATION_CHILDREN = _ARTIFACTS | {"participant"}
_LANE_CHILDREN = _DECORATIONS | {"flowNodeRef", "childLaneSet"}


def _elements(parent: etree._Element):
    """Child elements, skipping comments and processing instructions."""
    return (child for child in parent if isinstance(child.tag, str))


def _check_supported_elements(root: etree._Element, process: etree._Element) -> None:
    for child in _elements(root):
        if etree.QName(child).namespace == BPMNDI_NS:
            continue
        _require_bpmn_child(child, _DEFINITIONS_CHILDREN)
        if _local(child) == "collaboration":
            for part in _elements(child):
                _require_bpmn_child(part, _COLLABORATION_CHILDREN)
    _check_container(process)


def _require_bpmn_child(child: etree._Element, allowed) -> None:
    if etree.QName(child).namespace != BPMN_NS or _local(child) not in allowed:
        raise _refuse(f"<{_local(child)}> is not supported by this engine", child)


def _check_container(container: etree._Element) -> None:
    """Check a process or embedded subprocess: every child must be on the allow-list, recursively."""
    for child in _elements(container):
        name = _local(child) if etree.QName(child).namespace == BPMN_NS else None
        if name == "subProcess":
            if child.get("triggeredByEvent") == "true":
                raise _refuse("event subprocesses are not supported by this engine", child)
            _check_container(child)
        elif name == "laneSet":
            _check_lane_set(child)
        elif name in _ARTIFACTS:
            continue
        else:
            _require_bpmn_child(child, _FLOW_ELEMENTS.keys())
            for part in _elements(child):
                _require_bpmn_child(part, _FLOW_ELEMENTS[name])
            _check_flow_element(child)


def _check_lane_set(lane_set: etree._Element) -> None:
    for lane in _elements(lane_set):
        _require_bpmn_child(lane, _DECORATIONS | {"lane"})
        for part in _elements(lane):
            _require_bpmn_child(part, _LANE_CHILDREN)
            if _local(part) == "childLaneSet":
                _check_lane_set(part)


def _check_flow_element(element: etree._Element) -> None:
    name = _local(element)
    timers = list(element.iterchildren(_bpmn("timerEventDefinition")))
    if name in ("boundaryEvent", "intermediateCatchEvent") and len(timers) != 1:
        raise _refuse(f"a {name} must have exactly one timer definition; no other events are supported", element)
    for timer in timers:
        for part in _elements(timer):
            _require_bpmn_child(part, _TIMER_CHILDREN)
        if len(list(timer.iterchildren(_bpmn("timeDuration"), _bpmn("timeDate")))) != 1:
            raise _refuse("a timer needs exactly one timeDuration or timeDate", timer)
    if name == "scriptTask" and element.get("scriptFormat", "").lower() not in _PYTHON_SCRIPT_FORMATS:
        raise _refuse(f"script format '{element.get('scriptFormat')}' is not supported; scripts are Python", element)


def _check_sequence_flows(process: etree._Element) -> None:
    ids = {element.get("id"): element for element in process.iter() if element.get("id")}
    outgoing: dict[str, list[etree._Element]] = {}
    for flow in process.iter(_bpmn("sequenceFlow")):
        for end in ("sourceRef", "targetRef"):
            if flow.get(end) not in ids:
                raise _refuse(f"sequence flow {end} '{flow.get(end)}' is not an element of this process", flow)
        outgoing.setdefault(flow.get("sourceRef"), []).append(flow)

    for kind in ("exclusiveGateway", "inclusiveGateway", "parallelGateway"):
        for gateway in process.iter(_bpmn(kind)):
            flows = outgoing.get(gateway.get("id"), [])
            if not flows:
                raise _refuse(f"{kind} has no outgoing sequence flow", gateway)
            if kind == "parallelGateway" or len(flows) == 1:
                continue
            for flow in flows:
                has_condition = flow.find(_bpmn("conditionExpression")) is not None
                if not has_condition and flow.get("id") != gateway.get("default"):
                    raise _refuse(
                        f"sequence flow leaving {kind} '{gateway.get('id')}' has no condition and is not "
                        "the gateway's default flow",
                        flow,
                    )


def _check_expressions(process: etree._Element) -> None:
    """Refuse unsafe or malformed Python anywhere SpiffWorkflow will evaluate it."""
    for condition in process.iter(_bpmn("conditionExpression")):
        _check_model_source(condition.text or "", "eval", condition)
    for script in process.iter(_bpmn("script")):
        _check_model_source(script.text or "", "exec", script)
    for tag in ("preScript", "postScript"):
        for script in process.iter(f"{{{SPIFF_NS}}}{tag}"):
            _check_model_source(script.text or "", "exec", script)
    for tag in ("timeDuration", "timeDate"):
        for timer in process.iter(_bpmn(tag)):
            text = (timer.text or "").strip()
            if not _looks_like_timer_literal(text):
                _check_model_source(text, "eval", timer)
            elif problem := _timer_literal_error(text, duration=tag == "timeDuration"):
                raise _refuse(problem, timer)


def _check_model_source(source: str, mode: str, element: etree._Element) -> None:
    problem = _unsafe_source(source, mode)
    if problem is not None:
        reason, offset = problem
        line = element.sourceline + offset - 1 if element.sourceline and offset else element.sourceline
        raise BpmnError(reason, element_id=_nearest_id(element), line=line)


def _read_user_tasks(process: etree._Element) -> list[UserTaskInfo]:
    lane_of: dict[str, str] = {}
    # Document order visits a lane before its child lanes, so the innermost lane wins.
    for lane in process.iter(_bpmn("lane")):
        queue = (lane.get("name") or lane.get("id") or "").strip()
        for ref in lane.iterchildren(_bpmn("flowNodeRef")):
            lane_of[(ref.text or "").strip()] = queue
    return [_read_user_task(task, lane_of) for task in process.iter(_bpmn("userTask"))]


def _read_user_task(task: etree._Element, lane_of: dict[str, str]) -> UserTaskInfo:
    task_id = task.get("id")
    properties = {**_properties(task, CAMUNDA_NS), **_properties(task, SPIFF_NS)}

    groups_text = (
        properties.get("candidateGroup")
        or task.get(f"{{{CAMUNDA_NS}}}candidateGroups")
        or task.get(f"{{{FLOWABLE_NS}}}candidateGroups")
    )
    if groups_text:
        candidate_groups = _comma_list(groups_text)
    else:
        candidate_groups = [queue] if (queue := _lane_queue(task, lane_of)) else []
    if not candidate_groups:
        raise _refuse(
            "user task has no queue: put it in a lane or give it a candidateGroup property", task
        )
    for group in candidate_groups:
        if not _SLUG.fullmatch(group) or len(group) > _MAX_QUEUE_NAME_LENGTH:
            raise _refuse(f"'{group}' is not a valid queue name (letters, digits, '-' and '_')", task)

    priority = None
    if "priority" in properties:
        text = properties["priority"]
        if not (text.isascii() and text.isdigit() and MIN_PRIORITY <= int(text) <= MAX_PRIORITY):
            raise _refuse(f"priority '{text}' must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}", task)
        priority = int(text)

    skills = _comma_list(properties.get("requiredSkills", ""))
    for skill in skills:
        if not _SLUG.fullmatch(skill) or len(skill) > _MAX_SKILL_LENGTH:
            raise _refuse(f"'{skill}' is not a valid skill code (letters, digits, '-' and '_')", task)

    sla_hours = None
    if "slaHours" in properties:
        try:
            sla_hours = float(properties["slaHours"])
        except ValueError:
            sla_hours = math.nan
        if not 0 < sla_hours < math.inf:  # also false for nan
            raise _refuse(f"slaHours '{properties['slaHours']}' must be a positive number", task)

    documentation = task.find(_bpmn("documentation"))
    return UserTaskInfo(
        id=task_id,
        name=task.get("name") or task_id,
        queue_name=candidate_groups[0],
        candidate_groups=candidate_groups,
        priority=priority,
        required_skills=skills,
        form_fields=_read_form_fields(task),
        sla_hours=sla_hours,
        documentation=(documentation.text or "").strip() if documentation is not None else "",
    )


def _lane_queue(task: etree._Element, lane_of: dict[str, str]) -> str | None:
    # A task inside an embedded subprocess is usually in no lane itself: it works in its subprocess's lane.
    node = task
    while node is not None and node.tag != _bpmn("process"):
        if node.get("id") in lane_of:
            return lane_of[node.get("id")] or None
        node = node.getparent()
    return None


def _properties(task: etree._Element, namespace: str) -> dict[str, str]:
    found = {}
    extensions = task.find(_bpmn("extensionElements"))
    if extensions is None:
        return found
    for group in extensions.iterchildren(f"{{{namespace}}}properties"):
        for prop in group.iterchildren(f"{{{namespace}}}property"):
            if prop.get("name"):
                found[prop.get("name")] = (prop.get("value") or "").strip()
    return found


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _read_form_fields(task: etree._Element) -> list[FormField]:
    fields: list[FormField] = []
    extensions = task.find(_bpmn("extensionElements"))
    if extensions is None:
        return fields
    camunda = f"{{{CAMUNDA_NS}}}"
    for form in extensions.iterchildren(f"{camunda}formData"):
        for element in form.iterchildren(f"{camunda}formField"):
            field_id = (element.get("id") or "").strip()
            # Conditions refer to fields as Python names, so ids must be usable as names.
            if not field_id.isidentifier() or keyword.iskeyword(field_id) or field_id.startswith("_"):
                raise _refuse(f"form field id '{field_id}' must be a Python identifier not starting with '_'", element)
            if any(f.id == field_id for f in fields):
                raise _refuse(f"form field '{field_id}' is declared twice", element)
            field_type = element.get("type") or "string"
            if field_type not in FORM_FIELD_TYPES:
                raise _refuse(
                    f"form field '{field_id}' has type '{field_type}'; supported: {', '.join(FORM_FIELD_TYPES)}",
                    element,
                )
            required = any(
                constraint.get("name") == "required" and constraint.get("config", "true") != "false"
                for constraint in element.iter(f"{camunda}constraint")
            )
            enum_values = [
                EnumValue(id=value.get("id"), name=value.get("name") or value.get("id"))
                for value in element.iterchildren(f"{camunda}value")
                if value.get("id")
            ]
            if field_type == "enum" and not enum_values:
                raise _refuse(f"enum form field '{field_id}' has no values", element)
            fields.append(
                FormField(
                    id=field_id,
                    label=element.get("label") or field_id,
                    type=field_type,
                    required=required,
                    enum_values=enum_values if field_type == "enum" else [],
                )
            )
    return fields


def _spiff_specs(root: etree._Element, process: etree._Element) -> tuple[Any, dict]:
    parser = SpiffBpmnParser()
    try:
        parser.add_bpmn_xml(root)
        process_id = process.get("id")
        return parser.get_spec(process_id), parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        element = _element_by_id(root, exc.id) if getattr(exc, "id", None) else None
        line = element.sourceline if element is not None else (exc.line_number or None)
        raise BpmnError(str(exc), element_id=exc.id or None, line=line) from exc
    except Exception as exc:  # SpiffWorkflow's parser is not hardened against every malformed model
        raise BpmnError(f"the model could not be parsed: {exc}") from exc


def _element_by_id(root: etree._Element, element_id: str) -> etree._Element | None:
    for element in root.iter():
        if isinstance(element.tag, str) and element.get("id") == element_id:
            return element
    return None


# --- the expression sandbox ---------------------------------------------------------------------------------

class _BoundedEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow's script environment, evaluating in the bounded child processes of tasks/bpmn/script_sandbox.py.

    Behaves as SpiffWorkflow's TaskDataEnvironment (a script's globals are the task data; it leaves no
    callables behind), for every caller: SpiffWorkflow also calls the environment directly, past the engine.
    """

    def evaluate(self, expression, context, external_context=None):
        return script_sandbox.default_pool().evaluate(expression, context, external_context or {})

    def execute(self, script, context, external_context=None):
        left = script_sandbox.default_pool().execute(script, context, external_context or {})
        context.clear()
        context.update(left)
        return True

    def call_service(self, context, **kwargs):
        raise script_sandbox.ScriptRefused("service tasks are not supported")


class _SandboxedScriptEngine(PythonScriptEngine):
    """Runs conditions, timer expressions and scripts with SAFE_BUILTINS only, bounded in CPU time and memory,
    and carries the caller's clock."""

    def __init__(self, *, now: datetime) -> None:
        super().__init__(environment=_BoundedEnvironment())
        self.now = now

    def evaluate(self, task, expression, external_context=None):
        self._check(task, expression, "eval")
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except script_sandbox.LimitExceeded as exc:
            raise self._limit_error(task, f"expression {expression.strip()!r}", exc) from None
        except script_sandbox.ScriptRaised as exc:
            raise ScriptError(
                f"expression {expression.strip()!r} failed: {exc.type_name}: {exc.message}", element_id=_bpmn_id(task)
            ) from None
        except script_sandbox.ScriptRefused as exc:
            raise ScriptError(f"refused: {exc}", element_id=_bpmn_id(task)) from None

    def execute(self, task, script, external_context=None):
        self._check(task, script, "exec")
        try:
            self.environment.execute(script, task.data, external_context or {})
        except script_sandbox.LimitExceeded as exc:
            raise self._limit_error(task, "script", exc) from None
        except script_sandbox.ScriptRaised as exc:
            raise ScriptError(f"script failed: {exc.type_name}: {exc.message}", element_id=_bpmn_id(task)) from None
        except script_sandbox.ScriptRefused as exc:
            raise ScriptError(str(exc), element_id=_bpmn_id(task)) from None
        return True

    def call_service(self, task, **kwargs):
        raise ScriptError("service tasks are not supported", element_id=_bpmn_id(task))

    @staticmethod
    def _check(task, source: str, mode: str) -> None:
        problem = _unsafe_source(source, mode)
        if problem is not None:
            raise ScriptError(f"refused: {problem[0]}", element_id=_bpmn_id(task))

    @staticmethod
    def _limit_error(task, what: str, exc: script_sandbox.LimitExceeded) -> ScriptLimitExceeded:
        return ScriptLimitExceeded(f"{what} {exc.detail}", element_id=_bpmn_id(task), kind=exc.kind)


def _bpmn_id(task) -> str | None:
    return getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name


# --- timers on an injected clock ----------------------------------------------------------------------------


def _looks_like_timer_literal(text: str) -> bool:
    """Whether `text` is meant as an ISO 8601 literal, as BPMN editors write them (PT48H), not an expression.

    Text shaped like a literal counts as one even if malformed, so that a typo such as PT48X is refused at
    deploy time instead of being read as a variable name.
    """
    return _ISO_LITERAL_SHAPE.fullmatch(text) is not None


def _timer_literal_error(text: str, *, duration: bool) -> str | None:
    """Why `text` is not a valid ISO 8601 duration (or date-time), or None when it is."""
    try:
        if duration:
            TimerEventDefinition.parse_iso_duration(text)
        else:
            _as_utc(text)
    except Exception:  # SpiffWorkflow's duration parser raises a bare Exception
        return f"'{text}' is not a valid ISO 8601 {'duration, e.g. PT48H' if duration else 'date-time'}"
    return None


def _as_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    # SpiffWorkflow reads naive times in the server's zone; a model must not mean different things per server.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _clock(task) -> datetime:
    return task.workflow.script_engine.now


def _timer_text(task, expression: str, *, duration: bool) -> str:
    """The ISO 8601 text a timer means: its literal, or what its expression gives; checked either way."""
    text = expression.strip()
    if not _looks_like_timer_literal(text):
        text = task.workflow.script_engine.evaluate(task, expression)
        text = text.strip() if isinstance(text, str) else repr(text)
    if problem := _timer_literal_error(text, duration=duration):
        raise ScriptError(f"timer {expression.strip()!r}: {problem}", element_id=_bpmn_id(task))
    return text


class _ClockedDurationTimer(DurationTimerEventDefinition):
    """SpiffWorkflow's duration timer, reading time from the script engine's `now` instead of the wall clock."""

    def has_fired(self, my_task):
        now = _clock(my_task)
        due = my_task._get_internal_data("event_value")
        if due is None:
            duration = TimerEventDefinition.parse_iso_duration(_timer_text(my_task, self.expression, duration=True))
            due = (now + TimerEventDefinition.get_timedelta_from_start(duration, now)).isoformat()
            my_task._set_internal_data(event_value=due)
        if _as_utc(due) <= now:
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class _ClockedTimeDateTimer(TimeDateEventDefinition):
    """SpiffWorkflow's date-time timer, reading time from the script engine's `now` instead of the wall clock."""

    def has_fired(self, my_task):
        due = my_task._get_internal_data("event_value")
        if due is None:
            due = _as_utc(_timer_text(my_task, self.expression, duration=False)).isoformat()
            my_task._set_internal_data(event_value=due)
        if _as_utc(due) <= _clock(my_task):
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


def _serializer() -> BpmnWorkflowSerializer:
    registry = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
    # Registered under SpiffWorkflow's own type names, so stored specs stay in its standard format and the
    # parser's stock timers are simply restored as their clocked subclasses.
    TimerConditionalEventDefinitionConverter(_ClockedDurationTimer, registry, "DurationTimerEventDefinition")
    TimerConditionalEventDefinitionConverter(_ClockedTimeDateTimer, registry, "TimeDateEventDefinition")
    return BpmnWorkflowSerializer(registry)


_SERIALIZER = _serializer()


# --- running ------------------------------------------------------------------------------------------------


def start(*, spec: dict, variables: dict, now: datetime) -> EngineRun:
    """Start an instance of the definition with `variables` and run it to its first wait state."""
    _check_variables(variables)
    engine = _SandboxedScriptEngine(now=_aware(now))
    # SpiffWorkflow writes into the dicts it restores specs from; it gets copies, never the stored spec.
    process_spec = _SERIALIZER.from_dict(_copy_json(spec["spec"]))
    subprocess_specs = {name: _SERIALIZER.from_dict(_copy_json(sub)) for name, sub in spec["subprocess_specs"].items()}
    workflow = BpmnWorkflow(process_spec, subprocess_specs, script_engine=engine)
    # The root task's data is what every first task inherits.
    workflow.task_tree.data.update(_copy_json(variables))
    _run_until_waiting(workflow)
    return _outcome(workflow, spec, open_before=set())


def complete_task(*, spec: dict, state: dict, engine_task_id: str, variables: dict, now: datetime) -> EngineRun:
    """Complete an open user task with the variables its form collected, and run to the next wait state."""
    workflow = _restore(spec, state, now=now)
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
    try:
        task.run()
    except EngineError:
        raise
    except SpiffWorkflowException as exc:
        raise EngineError(str(exc), element_id=info.id) from exc
    _run_until_waiting(workflow)
    return _outcome(workflow, spec, open_before=open_before - {str(task.id)})


def fire_due_timers(*, spec: dict, state: dict, now: datetime) -> EngineRun:
    """Fire every timer due at `now` and run on; a no-op (same open tasks) when none is due."""
    workflow = _restore(spec, state, now=now)
    open_before = _open_task_ids(workflow, spec)
    _run_until_waiting(workflow)
    return _outcome(workflow, spec, open_before=open_before)


def cancel(*, spec: dict, state: dict) -> EngineRun:
    """Cancel the instance; closed_task_ids are the user tasks that were open."""
    # Cancelling reads no timers, so the clock is irrelevant; any aware time will do.
    workflow = _restore(spec, state, now=datetime.now(timezone.utc))
    open_before = _open_task_ids(workflow, spec)
    workflow.cancel()
    return _outcome(workflow, spec, open_before=open_before)


ELEMENT_ACTIVE = "active"
ELEMENT_COMPLETED = "completed"


def element_states(*, spec: dict, state: dict) -> dict[str, str]:
    """Where an instance stands, per BPMN element id: ELEMENT_ACTIVE for an open user task, a running subprocess
    or a waiting timer, ELEMENT_COMPLETED for an element the instance has passed. Elements not reached, skipped
    or cancelled are left out. An element visited again (a loop) is active if any visit is."""
    # Reading states fires no timer, so the clock is irrelevant; any aware time will do.
    workflow = _restore(spec, state, now=datetime.now(timezone.utc))
    states: dict[str, str] = {}
    for task in workflow.get_tasks():
        bpmn_id = getattr(task.task_spec, "bpmn_id", None)
        if not bpmn_id:
            continue  # SpiffWorkflow's own bookkeeping tasks (root, boundary-event split and join)
        waiting_timer = task.state == TaskState.WAITING and isinstance(
            getattr(task.task_spec, "event_definition", None), TimerEventDefinition
        )
        if waiting_timer or task.state in (TaskState.READY, TaskState.STARTED):
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
    return now.astimezone(timezone.utc)


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


def _restore(spec: dict, state: dict, *, now: datetime) -> BpmnWorkflow:
    if not isinstance(state, dict) or "tasks" not in state or _SERIALIZER.VERSION_KEY not in state:
        raise EngineError("the engine state is missing or not from this engine")
    serialised = {
        **state,
        # SpiffWorkflow writes into the spec dicts and pops entries out of the subprocess mapping while
        # restoring; it gets copies, never the caller's stored data. (Task dicts it only reads.)
        "spec": _copy_json(spec["spec"]),
        "subprocess_specs": _copy_json(spec["subprocess_specs"]),
        "subprocesses": dict(state.get("subprocesses", {})),
    }
    if state[_SERIALIZER.VERSION_KEY] != _SERIALIZER.VERSION:
        serialised = _copy_json(serialised)  # SpiffWorkflow's migrations rewrite nested dicts in place
    _SERIALIZER.migrate(serialised)  # also drops the version key
    workflow = _SERIALIZER.from_dict(serialised)
    workflow.script_engine = _SandboxedScriptEngine(now=_aware(now))
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
                element_id=_bpmn_id(task),
            )

    try:
        workflow.do_engine_steps(will_complete_task=count_step)
        # do_engine_steps refreshes timers last, and a timer that fires then is READY but not yet run.
        while workflow.get_next_task(state=TaskState.READY, manual=False) is not None:
            workflow.do_engine_steps(will_complete_task=count_step)
    except EngineError:
        raise
    except SpiffWorkflowException as exc:
        task_spec = getattr(exc, "task_spec", None)
        raise EngineError(str(exc), element_id=getattr(task_spec, "bpmn_id", None)) from exc


def _open_user_tasks(workflow: BpmnWorkflow, spec: dict):
    user_tasks = spec["user_tasks"]
    return [
        task
        for task in workflow.get_tasks(state=TaskState.READY, manual=True)
        if task.task_spec.bpmn_id in user_tasks
    ]


def _open_task_ids(workflow: BpmnWorkflow, spec: dict) -> set[str]:
    return {str(task.id) for task in _open_user_tasks(workflow, spec)}


def _open_user_task(workflow: BpmnWorkflow, spec: dict, engine_task_id: str):
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
    if task.state != TaskState.READY or task.task_spec.bpmn_id not in spec["user_tasks"]:
        raise TaskNotReady(
            f"task {engine_task_id} is not an open user task (it is {TaskState.get_name(task.state)})",
            element_id=task.task_spec.bpmn_id,
        )
    return task


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
            )
        )
    open_now = [task.engine_task_id for task in ready]
    completed = workflow.is_completed() and bool(workflow.success)
    if workflow.is_completed():
        variables = workflow.data
    else:
        variables = workflow.last_task.data if workflow.last_task is not None else workflow.task_tree.data

    state = _SERIALIZER.to_dict(workflow)
    del state["spec"], state["subprocess_specs"]
    state[_SERIALIZER.VERSION_KEY] = _SERIALIZER.VERSION
    return EngineRun(
        state=state,
        ready_user_tasks=ready,
        completed=completed,
        variables=_copy_json(variables),
        closed_task_ids=sorted(open_before - set(open_now)),
        opened_task_ids=[task_id for task_id in open_now if task_id not in open_before],
        next_timer_due_at=_next_timer_due_at(workflow),
    )


def _next_timer_due_at(workflow: BpmnWorkflow) -> datetime | None:
    due = [
        _as_utc(task.internal_data["event_value"])
        for task in workflow.get_tasks(state=TaskState.WAITING)
        if isinstance(getattr(task.task_spec, "event_definition", None), TimerEventDefinition)
        and isinstance(task.internal_data.get("event_value"), str)
    ]
    return min(due) if due else None
