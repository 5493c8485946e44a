"""Reading a BPMN definition: parsed safely, checked against what this engine runs, its userTasks and forms read,
and its SpiffWorkflow spec made (tasks/bpmn/engine.py: what a model may contain and the userTask conventions)."""

from __future__ import annotations

import ast
import dataclasses
import keyword
import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CANCEL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TERMINATION_EVENT_XPATH,
    TIMER_EVENT_XPATH,
)
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.defaults import EndEvent, StartEvent
from SpiffWorkflow.spiff.parser.event_parsers import SpiffEndEventParser, SpiffStartEventParser
from SpiffWorkflow.spiff.parser.process import VALIDATOR
from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser
from SpiffWorkflow.spiff.specs.defaults import ManualTask

from . import call_activity, dmn, multi_instance
from .errors import BpmnError
from .script_sandbox import unsafe_source
from .spiff import SERIALIZER, looks_like_timer_literal, timer_literal_error

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
FLOWABLE_NS = "http://flowable.org/bpmn"

MIN_PRIORITY = 0
MAX_PRIORITY = 100
FORM_FIELD_TYPES = ("string", "text", "boolean", "enum", "date", "long")
# Types whose value is text a person writes; only these may be sensitive (stored sealed, unreadable to the model's
# conditions and scripts). Choices, flags and numbers route the workflow.
SENSITIVE_FIELD_TYPES = ("string", "text", "date")

_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_TOPIC = re.compile(r"[-a-zA-Z0-9_.:]+")
MAX_TOPIC_LENGTH = 200  # tasks.ExternalTask.topic_name
DEFAULT_EXTERNAL_TASK_PRIORITY = 0  # Camunda's default external task priority
_MAX_QUEUE_NAME_LENGTH = 100  # queues.WorkflowQueue.queue_name
_MAX_SKILL_LENGTH = 50  # entitlements skill codes
_PYTHON_SCRIPT_FORMATS = {None, "", "python", "text/x-python", "text/python"}


# --- a definition, as services need it ----------------------------------------------------------------------


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
    sensitive: bool = False  # stored sealed (tasks/bpmn/forms.py); conditions and scripts may not read it


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
class ExternalTaskInfo:
    """A serviceTask with camunda:type="external": the instance waits there until a worker completes it."""

    id: str
    name: str
    topic_name: str
    priority: int  # camunda:taskPriority, else DEFAULT_EXTERNAL_TASK_PRIORITY


@dataclass(frozen=True)
class ParsedDefinition:
    process_key: str
    name: str
    spec: dict  # stored once per definition version; handed back to every run function
    user_tasks: list[UserTaskInfo]
    queue_names: list[str]  # every queue the model routes to, in model order
    start_queue_names: list[str] = dataclasses.field(default_factory=list)  # queues of the first user tasks
    external_tasks: list[ExternalTaskInfo] = dataclasses.field(default_factory=list)


# --- parsing ------------------------------------------------------------------------------------------------


def parse_definition(*, bpmn_xml: str) -> ParsedDefinition:
    """Parse and validate a BPMN 2.0 document; raise BpmnError naming the first thing this engine cannot run."""
    root = read_bpmn_document(bpmn_xml=bpmn_xml)
    _check_schema(root)
    process = _executable_process(root)
    _check_supported_elements(root, process)
    _check_sequence_flows(process)
    _check_expressions(process)
    calls = call_activity.read(process)
    rule_tasks = dmn.business_rule_tasks(process)
    user_tasks = _read_user_tasks(process)
    external_tasks = [_read_external_task(task) for task in process.iter(_bpmn("serviceTask"))]
    _check_sensitive_fields_unread(process, user_tasks)
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
            SERIALIZER.VERSION_KEY: SERIALIZER.VERSION,
            "spec": SERIALIZER.to_dict(spec),
            "subprocess_specs": {name: SERIALIZER.to_dict(sub) for name, sub in subprocess_specs.items()},
            "user_tasks": {task.id: dataclasses.asdict(task) for task in user_tasks},
            "start_queue_names": start_queue_names,
            "external_tasks": {task.id: dataclasses.asdict(task) for task in external_tasks},
            "call_activities": calls,
            "business_rule_tasks": rule_tasks,
            "message_start_names": _message_start_names(process),
            "signal_start_names": _signal_start_names(process),
            "event_subprocesses": _event_subprocesses(process),
            "error_variables": _error_variables(process),
        },
        user_tasks=user_tasks,
        queue_names=queue_names,
        start_queue_names=start_queue_names,
        external_tasks=external_tasks,
    )


def _message_start_names(process: etree._Element) -> list[str]:
    """The messages that start an instance: those of the process's message start events."""
    return sorted(
        {
            _message_name(definition)
            for start in process.iterchildren(_bpmn("startEvent"))
            for definition in start.iterchildren(_bpmn("messageEventDefinition"))
        }
    )


def _signal_start_names(process: etree._Element) -> list[str]:
    """The signals that start an instance: those of the process's signal start events."""
    return sorted(
        {
            _signal_name(definition)
            for start in process.iterchildren(_bpmn("startEvent"))
            for definition in start.iterchildren(_bpmn("signalEventDefinition"))
        }
    )


def _error_variables(process: etree._Element) -> dict[str, dict[str, str]]:
    """Per error boundary event id, the variables its camunda:errorCodeVariable and camunda:errorMessageVariable
    name: where a caught error's code and message are put, as Camunda does."""
    found = {}
    for boundary in process.iter(_bpmn("boundaryEvent")):
        for definition in boundary.iterchildren(_bpmn("errorEventDefinition")):
            names = {
                key: (definition.get(f"{{{CAMUNDA_NS}}}{attribute}") or "").strip()
                for key, attribute in (("code", "errorCodeVariable"), ("message", "errorMessageVariable"))
            }
            for name in names.values():
                if name and (not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_")):
                    raise _refuse(
                        f"error variable '{name}' must be a Python identifier not starting with '_'", definition
                    )
            if any(names.values()):
                found[boundary.get("id")] = {key: name for key, name in names.items() if name}
    return found


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
    parser = etree.XMLParser(encoding="utf-8", resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
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
        raise _refuse(f"{len(executable)} executable processes; a definition must have exactly one", executable[1])
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
_EVENT_DEFINITIONS = {"timerEventDefinition", "messageEventDefinition", "signalEventDefinition"}
_CODE_EVENT_DEFINITIONS = {"errorEventDefinition", "escalationEventDefinition"}
_FLOW_ELEMENTS: dict[str, set[str]] = {
    # Which start events may carry which definition depends on where they are (_check_start_event).
    "startEvent": _NODE_CHILDREN | _EVENT_DEFINITIONS | _CODE_EVENT_DEFINITIONS,
    "endEvent": _NODE_CHILDREN | _CODE_EVENT_DEFINITIONS | {"signalEventDefinition"},
    "intermediateThrowEvent": _NODE_CHILDREN | {"signalEventDefinition"},
    "userTask": _NODE_CHILDREN | {multi_instance.LOOP},
    "serviceTask": _NODE_CHILDREN,  # camunda:type="external" only (_check_flow_element)
    "receiveTask": _NODE_CHILDREN,
    "scriptTask": _NODE_CHILDREN | {"script"},
    "callActivity": _NODE_CHILDREN,
    "businessRuleTask": _NODE_CHILDREN,
    "exclusiveGateway": _NODE_CHILDREN,
    "inclusiveGateway": _NODE_CHILDREN,
    "parallelGateway": _NODE_CHILDREN,
    "boundaryEvent": _NODE_CHILDREN | _EVENT_DEFINITIONS | _CODE_EVENT_DEFINITIONS,
    "intermediateCatchEvent": _NODE_CHILDREN | _EVENT_DEFINITIONS,
    "sequenceFlow": _DECORATIONS | {"conditionExpression"},
}
_TIMER_CHILDREN = _DECORATIONS | {"timeDuration", "timeDate"}
_DEFINITIONS_CHILDREN = _DECORATIONS | {
    "process",
    "collaboration",
    "category",
    "message",
    "signal",
    "error",
    "escalation",
}
_MAX_MESSAGE_NAME_LENGTH = 200
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
                _check_event_subprocess(child, container)
            _check_container(child)
        elif name == "laneSet":
            _check_lane_set(child)
        elif name in _ARTIFACTS or (name in ("incoming", "outgoing") and _local(container) == "subProcess"):
            continue  # a subprocess's own incoming/outgoing refs, as Camunda Modeler writes them
        else:
            _require_bpmn_child(child, _FLOW_ELEMENTS.keys())
            for part in _elements(child):
                _require_bpmn_child(part, _FLOW_ELEMENTS[name])
                if _local(part) == multi_instance.LOOP:
                    for loop_part in _elements(part):
                        _require_bpmn_child(loop_part, multi_instance.LOOP_CHILDREN)
            _check_flow_element(child)
            multi_instance.check(child)


def _check_event_subprocess(subprocess: etree._Element, container: etree._Element) -> None:
    """An event subprocess sits in the process itself (SpiffWorkflow 3.2 starts one on a message, signal or error
    only there) and has one start event; an error one always interrupts."""
    if _local(container) != "process":
        raise _refuse("an event subprocess must be drawn in the process itself, not inside a subprocess", subprocess)
    starts = list(subprocess.iterchildren(_bpmn("startEvent")))
    if len(starts) != 1:
        raise _refuse("an event subprocess needs exactly one start event", subprocess)
    errors = list(starts[0].iterchildren(_bpmn("errorEventDefinition")))
    if errors and starts[0].get("isInterrupting") == "false":
        raise _refuse('an error start event always interrupts: remove isInterrupting="false"', starts[0])


def _event_subprocesses(process: etree._Element) -> dict[str, dict]:
    """Per event subprocess id: the kind of its start event (message, signal, timer, error, escalation), the message
    or signal name it waits for, and whether it interrupts the process."""
    found = {}
    for subprocess in process.iterchildren(_bpmn("subProcess")):
        if subprocess.get("triggeredByEvent") != "true":
            continue
        start = next(subprocess.iterchildren(_bpmn("startEvent")))
        definition = next(part for part in _elements(start) if _local(part).endswith("EventDefinition"))
        kind = _local(definition).removesuffix("EventDefinition")
        name = {"message": _message_name, "signal": _signal_name}.get(kind, lambda _: None)(definition)
        found[subprocess.get("id")] = {
            "kind": kind,
            "name": name,
            "interrupting": start.get("isInterrupting") != "false",
        }
    return found


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
    messages = list(element.iterchildren(_bpmn("messageEventDefinition")))
    signals = list(element.iterchildren(_bpmn("signalEventDefinition")))
    codes = [child for child in _elements(element) if _local(child) in _CODE_EVENT_DEFINITIONS]
    definitions = len(timers) + len(messages) + len(signals) + len(codes)
    if name in ("boundaryEvent", "intermediateCatchEvent") and definitions != 1:
        kinds = "timer, message, signal, error or escalation" if name == "boundaryEvent" else "timer, message or signal"
        raise _refuse(f"a {name} must have exactly one {kinds} definition; no other events are supported", element)
    if name == "boundaryEvent" and codes:
        attached = _element_by_id(element.getroottree().getroot(), element.get("attachedToRef") or "")
        kind = _local(codes[0]).removesuffix("EventDefinition")
        on_subprocess = attached is not None and _local(attached) == "subProcess"
        # An external task's worker may raise a BPMN error (tasks/external/services.py), never an escalation.
        on_external_task = attached is not None and _local(attached) == "serviceTask" and kind == "error"
        if not (on_subprocess or on_external_task):
            thrower = "an embedded subProcess throws" + (
                " or an external serviceTask's worker raises" if kind == "error" else ""
            )
            raise _refuse(f"a boundary {kind} event catches what {thrower}: attach it to one", element)
    if name == "endEvent" and definitions > 1:
        raise _refuse("an end event may throw one error, escalation or signal", element)
    if name == "intermediateThrowEvent" and definitions != 1:
        raise _refuse(
            "an intermediate throw event must throw exactly one signal; no other events are supported", element
        )
    if name == "startEvent":
        _check_start_event(element, definitions, timers + messages + signals + codes)
    for code in codes:
        for part in _elements(code):
            _require_bpmn_child(part, _DECORATIONS)
        _code_ref(code)
    for message in messages:
        for part in _elements(message):
            _require_bpmn_child(part, _DECORATIONS)
        _message_name(message)
    if name == "receiveTask":
        _message_name(element)
    for signal in signals:
        for part in _elements(signal):
            _require_bpmn_child(part, _DECORATIONS)
        _signal_name(signal)
    for timer in timers:
        for part in _elements(timer):
            _require_bpmn_child(part, _TIMER_CHILDREN)
        if len(list(timer.iterchildren(_bpmn("timeDuration"), _bpmn("timeDate")))) != 1:
            raise _refuse("a timer needs exactly one timeDuration or timeDate", timer)
    if name == "serviceTask":
        _check_external_task(element)
    if name == "scriptTask" and element.get("scriptFormat", "").lower() not in _PYTHON_SCRIPT_FORMATS:
        raise _refuse(f"script format '{element.get('scriptFormat')}' is not supported; scripts are Python", element)


def _check_external_task(element: etree._Element) -> None:
    if element.get(f"{{{CAMUNDA_NS}}}type") != "external":
        raise _refuse(
            'a serviceTask must be an external task: camunda:type="external" with a camunda:topic; '
            "this engine calls no services itself",
            element,
        )
    topic = element.get(f"{{{CAMUNDA_NS}}}topic") or ""
    if not _TOPIC.fullmatch(topic) or len(topic) > MAX_TOPIC_LENGTH:
        raise _refuse(
            f"external task topic '{topic}' must be 1 to {MAX_TOPIC_LENGTH} letters, digits, '-', '_', '.' or ':'",
            element,
        )
    priority = element.get(f"{{{CAMUNDA_NS}}}taskPriority")
    if priority is not None and (not priority.strip().isdigit() or not MIN_PRIORITY <= int(priority) <= MAX_PRIORITY):
        raise _refuse(
            f"taskPriority '{priority}' must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}", element
        )


def _read_external_task(element: etree._Element) -> ExternalTaskInfo:
    priority = element.get(f"{{{CAMUNDA_NS}}}taskPriority")
    return ExternalTaskInfo(
        id=element.get("id"),
        name=(element.get("name") or element.get("id")).strip(),
        topic_name=element.get(f"{{{CAMUNDA_NS}}}topic"),
        priority=int(priority) if priority is not None else DEFAULT_EXTERNAL_TASK_PRIORITY,
    )


def _check_start_event(element: etree._Element, definitions: int, found: list) -> None:
    """The process's start events may wait for a message or a signal; an event subprocess's start event is triggered by one
    timer, message, signal, error or escalation; an embedded subprocess's start events have none."""
    parent = element.getparent()
    if _local(parent) == "subProcess" and parent.get("triggeredByEvent") == "true":
        if definitions != 1:
            raise _refuse("an event subprocess's start event needs exactly one event definition", element)
        return
    if not found:
        return
    if _local(parent) != "process":
        raise _refuse("only the process's own start events and event subprocesses' may wait for an event", element)
    if definitions > 1 or _local(found[0]) not in ("messageEventDefinition", "signalEventDefinition"):
        raise _refuse("a start event of the process may wait for one message or one signal and nothing else", element)


def _code_ref(definition: etree._Element) -> None:
    """An errorRef / escalationRef, when given, names a <bpmn:error> / <bpmn:escalation> of the document."""
    kind = _local(definition).removesuffix("EventDefinition")
    ref = (definition.get(f"{kind}Ref") or "").strip()
    if not ref:
        return  # a catch-all boundary or event subprocess start; a throw without a code
    root = definition.getroottree().getroot()
    if not any(item.get("id") == ref for item in root.iterchildren(_bpmn(kind))):
        raise _refuse(f"{kind}Ref '{ref}' is not a <bpmn:{kind}> of this document", definition)


def _message_name(element: etree._Element) -> str:
    """The name of the <bpmn:message> a messageEventDefinition or receiveTask refers to (its id if unnamed), which
    is the name a message is sent by (POST /api/workflow/messages)."""
    ref = (element.get("messageRef") or "").strip()
    if not ref:
        raise _refuse(f"<{_local(element)}> names no message: give it a messageRef", element)
    root = element.getroottree().getroot()
    message = next((m for m in root.iterchildren(_bpmn("message")) if m.get("id") == ref), None)
    if message is None:
        raise _refuse(f"messageRef '{ref}' is not a <bpmn:message> of this document", element)
    name = (message.get("name") or ref).strip()
    if len(name) > _MAX_MESSAGE_NAME_LENGTH:
        raise _refuse(f"message name '{name[:40]}...' is longer than {_MAX_MESSAGE_NAME_LENGTH} characters", message)
    return name


def _signal_name(element: etree._Element) -> str:
    """The name of the <bpmn:signal> a signalEventDefinition refers to (its id if unnamed): what
    POST /api/workflow/signals broadcasts."""
    ref = (element.get("signalRef") or "").strip()
    if not ref:
        raise _refuse("<signalEventDefinition> names no signal: give it a signalRef", element)
    root = element.getroottree().getroot()
    signal = next((m for m in root.iterchildren(_bpmn("signal")) if m.get("id") == ref), None)
    if signal is None:
        raise _refuse(f"signalRef '{ref}' is not a <bpmn:signal> of this document", element)
    name = (signal.get("name") or ref).strip()
    if len(name) > _MAX_MESSAGE_NAME_LENGTH:
        raise _refuse(f"signal name '{name[:40]}...' is longer than {_MAX_MESSAGE_NAME_LENGTH} characters", signal)
    return name


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
            if not looks_like_timer_literal(text):
                _check_model_source(text, "eval", timer)
            elif problem := timer_literal_error(text, duration=tag == "timeDuration"):
                raise _refuse(problem, timer)


def _check_model_source(source: str, mode: str, element: etree._Element) -> None:
    problem = unsafe_source(source, mode)
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
        raise _refuse("user task has no queue: put it in a lane or give it a candidateGroup property", task)
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
            sensitive = _form_field_property(element, "sensitive").lower() == "true"
            if sensitive and field_type not in SENSITIVE_FIELD_TYPES:
                raise _refuse(
                    f"form field '{field_id}' is marked sensitive but has type '{field_type}'; only "
                    f"{', '.join(SENSITIVE_FIELD_TYPES)} fields may be",
                    element,
                )
            fields.append(
                FormField(
                    id=field_id,
                    label=element.get("label") or field_id,
                    type=field_type,
                    required=required,
                    enum_values=enum_values if field_type == "enum" else [],
                    sensitive=sensitive,
                )
            )
    return fields


def _form_field_property(element: etree._Element, name: str) -> str:
    """A formField's <camunda:properties><camunda:property id="sensitive" value="true"/> (Camunda Modeler writes
    `id`; `name` is read too)."""
    camunda = f"{{{CAMUNDA_NS}}}"
    for group in element.iterchildren(f"{camunda}properties"):
        for prop in group.iterchildren(f"{camunda}property"):
            if (prop.get("id") or prop.get("name")) == name:
                return (prop.get("value") or "").strip()
    return ""


def _check_sensitive_fields_unread(process: etree._Element, user_tasks: list[UserTaskInfo]) -> None:
    """A sensitive field reaches the engine sealed, so a condition or script reading it would see ciphertext:
    refuse the model instead, naming the field and where it is read."""
    sensitive = {f.id for task in user_tasks for f in task.form_fields if f.sensitive}
    if not sensitive:
        return
    sources = [*process.iter(_bpmn("conditionExpression")), *process.iter(_bpmn("script"))]
    for tag in ("preScript", "postScript"):
        sources += list(process.iter(f"{{{SPIFF_NS}}}{tag}"))
    looping = multi_instance.expression_elements(process)
    sources += looping
    for tag in ("timeDuration", "timeDate"):
        sources += [timer for timer in process.iter(_bpmn(tag)) if not looks_like_timer_literal(timer.text or "")]
    for element in sources:
        try:
            text = textwrap.dedent(element.text or "").strip()
            tree = ast.parse(multi_instance.unwrap(text) if element in looping else text)
        except SyntaxError:
            continue  # _check_expressions has refused it already
        read = sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} & sensitive)
        if read:
            raise _refuse(
                f"form field '{read[0]}' is sensitive (stored encrypted); conditions and scripts cannot read it",
                element,
            )


class _EndEventParser(SpiffEndEventParser):
    """SpiffWorkflow's end event parser, which in 3.2 reads no signalEventDefinition (a signal end event would end
    silently): it reads one as the intermediate throw event's parser does."""

    def create_task(self):
        event_definition = self.get_event_definition(
            [
                MESSAGE_EVENT_XPATH,
                CANCEL_EVENT_XPATH,
                ERROR_EVENT_XPATH,
                ESCALATION_EVENT_XPATH,
                TERMINATION_EVENT_XPATH,
            ]
            + [SIGNAL_EVENT_XPATH]
        )
        task = self._create_task(event_definition)
        task.connect(self.spec.end)
        return task


class _StartEventParser(SpiffStartEventParser):
    """SpiffWorkflow's start event parser, which in 3.2 reads no error or escalation definition (an event
    subprocess waiting for one would start with the process instead): it reads them too."""

    def create_task(self):
        event_definition = self.get_event_definition(
            [MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, TIMER_EVENT_XPATH, ERROR_EVENT_XPATH, ESCALATION_EVENT_XPATH]
        )
        task = self._create_task(event_definition)
        self.spec.start.connect(task)
        return task


class _Parser(call_activity.EngineParser):
    """The engine's parser (call activities and business rule tasks: call_activity.py), with an external
    serviceTask made a manual task: the engine stops there, as at a userTask, until the service completes it
    (tasks/external/). SpiffWorkflow's own ServiceTask would call the script engine instead, within the step.
    Signal end events throw their signal (_EndEventParser); event subprocesses start on errors and escalations
    (_StartEventParser)."""

    OVERRIDE_PARSER_CLASSES = {
        **call_activity.EngineParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (SpiffTaskParser, ManualTask),
        full_tag("endEvent"): (_EndEventParser, EndEvent),
        full_tag("startEvent"): (_StartEventParser, StartEvent),
    }


def _spiff_specs(root: etree._Element, process: etree._Element) -> tuple[Any, dict]:
    parser = _Parser()
    try:
        parser.add_bpmn_xml(multi_instance.spiff_ready(root))
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
