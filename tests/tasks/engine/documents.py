"""Small BPMN documents for engine tests, built around a process body."""

from itertools import pairwise
from pathlib import Path

DEMO_FILE = Path(__file__).resolve().parents[3] / "tasks" / "bpmn" / "onecms_case_handling.bpmn"
PARALLEL_FILE = Path(__file__).resolve().parent / "parallel_review.bpmn"
MULTI_INSTANCE_FILE = Path(__file__).resolve().parent / "multi_instance_review.bpmn"
CALL_FILE = Path(__file__).resolve().parent / "call_review.bpmn"
CALLED_FILE = Path(__file__).resolve().parent / "called_review.bpmn"
DECISION_FILE = Path(__file__).resolve().parent / "risk_decision.dmn"
RULE_TASK_FILE = Path(__file__).resolve().parent / "decide_risk.bpmn"

NAMESPACES = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
    'xmlns:flowable="http://flowable.org/bpmn"'
)


def bpmn_document(process_body: str, *, before_process: str = "", executable: str = "true") -> str:
    """A BPMN 2.0 document with one process `fixture` holding `process_body`."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<bpmn:definitions {NAMESPACES} id="fixture_definitions" targetNamespace="http://example.test/bpmn">\n'
        f"{before_process}"
        f'  <bpmn:process id="fixture" name="Fixture" isExecutable="{executable}">\n'
        f"{process_body}\n"
        "  </bpmn:process>\n"
        "</bpmn:definitions>\n"
    )


def linear_process(*nodes: str, node_ids: list[str]) -> str:
    """A process body: start → each of `nodes` in order → end, wired by sequence flows between `node_ids`."""
    chain = ["start", *node_ids, "end"]
    flows = "\n".join(
        f'    <bpmn:sequenceFlow id="flow_{i}" sourceRef="{source}" targetRef="{target}"/>'
        for i, (source, target) in enumerate(pairwise(chain))
    )
    return '    <bpmn:startEvent id="start"/>\n' + "\n".join(nodes) + '\n    <bpmn:endEvent id="end"/>\n' + flows


def user_task(task_id: str, queue: str = "triage", *, extensions: str = "") -> str:
    body = f"<bpmn:extensionElements>{extensions}</bpmn:extensionElements>" if extensions else ""
    return f'    <bpmn:userTask id="{task_id}" name="{task_id.title()}" camunda:candidateGroups="{queue}">{body}</bpmn:userTask>'


def script_task(task_id: str, script: str) -> str:
    return f'    <bpmn:scriptTask id="{task_id}" scriptFormat="python"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>'
