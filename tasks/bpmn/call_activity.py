"""Call activities: read and checked at deploy, waited on by the engine, their variables mapped in and out.

A <bpmn:callActivity calledElement="KEY"> runs the definition deployed under process key KEY as a process instance
of its own, a child of the calling one (tasks/bpmn/called_processes.py starts it, cancels it with its parent, and
completes the call activity when it ends). The engine only waits: the call activity is a task that stays open, as a
user task does, until complete_call is given the child's variables.

  version    the latest active version when the child starts, unless pinned with
             camunda:calledElementBinding="version" camunda:calledElementVersion="3"
  variables  in:  <camunda:in source="amount" target="claim_amount"/> copies a variable into the child,
                  <camunda:in variables="all"/> copies every variable; nothing is copied without one (as Camunda)
             out: <camunda:out source="decision" target="review_decision"/>, <camunda:out variables="all"/>:
                  the same, from the child's variables when it ends back into the caller's

Expressions (sourceExpression), business keys and the deployment and versionTag bindings are refused at deploy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser
from SpiffWorkflow.spiff.specs.defaults import ManualTask

from .dmn import DecisionTask, DecisionTaskParser
from .errors import BpmnError

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_KEY = re.compile(r"[A-Za-z_][-A-Za-z0-9_.]*")


@dataclass(frozen=True)
class ReadyCall:
    """A call activity the engine waits in: the child process to start for it, and what it starts with."""

    engine_task_id: str
    element_id: str
    called_element: str  # the process key of the definition to run
    version: int | None  # None: the latest active version
    variables: dict = field(default_factory=dict)  # the caller's variables, mapped by the camunda:in entries


class EngineParser(SpiffBpmnParser):
    """SpiffWorkflow's parser, reading a call activity as a task the engine waits in (the child runs apart), and a
    business rule task as one that evaluates its decision when it runs (dmn.py)."""

    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        f"{{{BPMN_NS}}}callActivity": (SpiffTaskParser, ManualTask),
        f"{{{BPMN_NS}}}businessRuleTask": (DecisionTaskParser, DecisionTask),
    }


def _camunda(name: str) -> str:
    return f"{{{CAMUNDA_NS}}}{name}"


def _refuse(detail: str, element: etree._Element) -> BpmnError:
    node = element
    while node is not None and not node.get("id"):
        node = node.getparent()
    return BpmnError(detail, element_id=node.get("id") if node is not None else None, line=element.sourceline)


def _mappings(element: etree._Element, direction: str) -> list[dict]:
    found = []
    extensions = element.find(f"{{{BPMN_NS}}}extensionElements")
    if extensions is None:
        return found
    for mapping in extensions.iterchildren(_camunda(direction)):
        if mapping.get("variables") is not None:
            if mapping.get("variables") != "all":
                raise _refuse(f"camunda:{direction} variables='{mapping.get('variables')}': only 'all' is", mapping)
            found.append({"all": True})
            continue
        if mapping.get("sourceExpression") is not None or mapping.get("businessKey") is not None:
            raise _refuse(f"camunda:{direction} with an expression or business key is not supported", mapping)
        source, target = mapping.get("source") or "", mapping.get("target") or mapping.get("source") or ""
        for name in (source, target):
            if not _NAME.fullmatch(name):
                raise _refuse(f"camunda:{direction} source and target must be variable names, not '{name}'", mapping)
        found.append({"source": source, "target": target})
    return found


def read(process: etree._Element) -> dict[str, dict]:
    """Every call activity of the process: {element id: {called_element, version, in, out}}; BpmnError when one
    cannot be run."""
    calls = {}
    for element in process.iter(f"{{{BPMN_NS}}}callActivity"):
        called = (element.get("calledElement") or "").strip()
        if not called or not _KEY.fullmatch(called) or "${" in called:
            raise _refuse("a call activity needs calledElement: the process key of a deployed definition", element)
        binding = element.get(_camunda("calledElementBinding"), "latest")
        version = None
        if binding == "version":
            text = (element.get(_camunda("calledElementVersion")) or "").strip()
            if not (text.isascii() and text.isdigit() and int(text) > 0):
                raise _refuse(f"camunda:calledElementVersion '{text}' must be a version number", element)
            version = int(text)
        elif binding != "latest":
            raise _refuse(f"camunda:calledElementBinding '{binding}' is not supported; use latest or version", element)
        calls[element.get("id")] = {
            "called_element": called,
            "version": version,
            "in": _mappings(element, "in"),
            "out": _mappings(element, "out"),
        }
    return calls


def mapped(mappings: list[dict], variables: dict) -> dict:
    """`variables` as the camunda:in or camunda:out `mappings` pass them on (a variable not set is not passed)."""
    passed = {}
    for mapping in mappings:
        if mapping.get("all"):
            passed.update(variables)
        elif mapping["source"] in variables:
            passed[mapping["target"]] = variables[mapping["source"]]
    return passed
