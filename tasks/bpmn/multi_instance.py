"""Multi-instance user tasks: checked at deploy, read the way Camunda Modeler writes them, and counted at run time.

A userTask may carry <bpmn:multiInstanceLoopCharacteristics> (isSequential="true" for one instance after another,
else all at once), with the instances given by either

  - a collection: `camunda:collection="${documents}"` with `camunda:elementVariable="document"` (Camunda Modeler),
    or the standard <bpmn:loopDataInputRef>documents</bpmn:loopDataInputRef> with
    <bpmn:inputDataItem id="document" name="document"/>; one instance per item, the item in the element variable;
  - or a cardinality: <bpmn:loopCardinality>3</bpmn:loopCardinality>, a whole number or a Python expression;

and optionally a <bpmn:completionCondition>, a Python expression evaluated after each instance completes over that
instance's variables plus nrOfInstances, nrOfCompletedInstances and nrOfActiveInstances (Camunda's names): when true,
the task is done and its open instances are cancelled. Expressions may be wrapped in `${...}` as Camunda Modeler users
write them; what is inside must be Python (`${nrOfCompletedInstances >= 2}` is).

SpiffWorkflow's parser (spiff.py uses SpiffWorkflow.spiff's, which reads the standard form only; SpiffWorkflow.camunda's
reads the Camunda attributes but rewrites the shared spec while running) is given the standard form: spiff_ready
translates the Camunda attributes into it on a copy of the document.
"""

from __future__ import annotations

import copy
import re

from lxml import etree

from .errors import BpmnError
from .script_sandbox import unsafe_source

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
LOOP = "multiInstanceLoopCharacteristics"
# What a multiInstanceLoopCharacteristics may contain (complexBehaviorDefinition and events are not run).
LOOP_CHILDREN = {
    "documentation",
    "extensionElements",
    "loopCardinality",
    "loopDataInputRef",
    "loopDataOutputRef",
    "inputDataItem",
    "outputDataItem",
    "completionCondition",
}
# The elements a multiInstanceLoopCharacteristics may be on.
LOOPING_ELEMENTS = {"userTask"}
COUNTERS = ("nrOfInstances", "nrOfCompletedInstances", "nrOfActiveInstances")

_WRAPPED = re.compile(r"\s*[$#]\{(.*)\}\s*", re.DOTALL)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _bpmn(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def unwrap(text: str | None) -> str:
    """The Python inside a `${...}` (or `#{...}`) expression; other text as it is, stripped."""
    text = text or ""
    matched = _WRAPPED.fullmatch(text)
    return (matched.group(1) if matched else text).strip()


def _refuse(detail: str, element: etree._Element) -> BpmnError:
    node = element
    while node is not None and not node.get("id"):
        node = node.getparent()
    return BpmnError(detail, element_id=node.get("id") if node is not None else None, line=element.sourceline)


def _check_source(source: str, element: etree._Element) -> None:
    problem = unsafe_source(source, "eval")
    if problem is not None:
        raise _refuse(problem[0], element)


def check(element: etree._Element) -> None:
    """Refuse a multiInstanceLoopCharacteristics on `element` that this engine cannot run, naming it and its line."""
    loops = list(element.iterchildren(_bpmn(LOOP)))
    if not loops:
        return
    name = etree.QName(element).localname
    loop = loops[0]
    if name not in LOOPING_ELEMENTS:
        raise _refuse(f"a {name} cannot be multi-instance here; only user tasks can", loop)
    if loop.get("behavior", "All") != "All":
        raise _refuse("multi-instance behavior other than 'All' is not supported", loop)
    collection = loop.get(f"{{{CAMUNDA_NS}}}collection")
    element_variable = loop.get(f"{{{CAMUNDA_NS}}}elementVariable")
    cardinality = loop.find(_bpmn("loopCardinality"))
    data_input = loop.find(_bpmn("loopDataInputRef"))
    given = [what for what in (collection, cardinality, data_input) if what is not None]
    if len(given) != 1:
        raise _refuse(
            "a multi-instance task needs exactly one of a loop cardinality, a camunda:collection or a loopDataInputRef",
            loop,
        )
    if collection is not None:
        if not _NAME.fullmatch(unwrap(collection)):
            raise _refuse(f"camunda:collection '{collection}' must name a process variable, e.g. ${{documents}}", loop)
        if element_variable is not None and not _NAME.fullmatch(element_variable):
            raise _refuse(f"camunda:elementVariable '{element_variable}' must be a variable name", loop)
    elif element_variable is not None:
        raise _refuse("camunda:elementVariable needs a camunda:collection", loop)
    for ref in (data_input, loop.find(_bpmn("loopDataOutputRef"))):
        if ref is not None and not _NAME.fullmatch((ref.text or "").strip()):
            raise _refuse(f"'{(ref.text or '').strip()}' must name a process variable", ref)
    for item in (loop.find(_bpmn("inputDataItem")), loop.find(_bpmn("outputDataItem"))):
        if item is not None and not _NAME.fullmatch(item.get("name") or item.get("id") or ""):
            raise _refuse("a data item needs a variable name as its name or id", item)
    if cardinality is not None:
        text = unwrap(cardinality.text)
        if not text:
            raise _refuse("the loop cardinality is empty", cardinality)
        _check_source(text, cardinality)
    condition = loop.find(_bpmn("completionCondition"))
    if condition is not None:
        _check_source(unwrap(condition.text), condition)


def expression_elements(process: etree._Element) -> list[etree._Element]:
    """The elements holding multi-instance expressions (cardinalities, completion conditions)."""
    return [*process.iter(_bpmn("loopCardinality")), *process.iter(_bpmn("completionCondition"))]


def spiff_ready(root: etree._Element) -> etree._Element:
    """`root`, or a copy of it with its multi-instance tasks in the standard form SpiffWorkflow's parser reads:
    Camunda's collection and element variable as loopDataInputRef and inputDataItem, `${...}` unwrapped."""
    if next(root.iter(_bpmn(LOOP)), None) is None:
        return root
    root = copy.deepcopy(root)
    for loop in root.iter(_bpmn(LOOP)):
        for tag in ("loopCardinality", "completionCondition"):
            for expression in loop.iterchildren(_bpmn(tag)):
                expression.text = unwrap(expression.text)
        collection = loop.attrib.pop(f"{{{CAMUNDA_NS}}}collection", None)
        element_variable = loop.attrib.pop(f"{{{CAMUNDA_NS}}}elementVariable", None)
        if collection is None:
            continue
        # Schema order: loopCardinality, loopDataInputRef, loopDataOutputRef, inputDataItem, outputDataItem, ...
        position = len([c for c in loop if etree.QName(c).localname in ("documentation", "extensionElements")])
        data_input = etree.Element(_bpmn("loopDataInputRef"))
        data_input.text = unwrap(collection)
        loop.insert(position, data_input)
        if element_variable is not None:
            item = etree.Element(_bpmn("inputDataItem"), id=element_variable, name=element_variable)
            following = loop.find(_bpmn("loopDataOutputRef"))
            if following is not None:
                following.addnext(item)
            else:
                data_input.addnext(item)
    return root


# --- run time -----------------------------------------------------------------------------------------------


def loop_spec(task):
    """The multi-instance spec `task` is an instance of, or None."""
    from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask

    parent = task.parent
    if parent is not None and isinstance(parent.task_spec, MultiInstanceTask):
        return parent.task_spec
    return None


def instance_variables(task) -> dict:
    """What identifies one instance of a multi-instance task: its element variable and loopCounter (from 0)."""
    spec = loop_spec(task)
    if spec is None:
        return {}
    instances = [t.id for t in spec._instances(task.parent)]
    found = {"loopCounter": instances.index(task.id)}
    if spec.input_item is not None and spec.input_item.bpmn_id in task.data:
        found[spec.input_item.bpmn_id] = task.data[spec.input_item.bpmn_id]
    return found


def closed_by_its_loop(workflow, task_id: str) -> bool:
    """Whether the task `task_id`, just closed, is an instance whose loop ended by its completion condition."""
    from uuid import UUID

    from SpiffWorkflow.util.task import TaskState

    task = workflow.get_task_from_id(UUID(task_id))
    if task is None or loop_spec(task) is None:
        return False
    return task.state == TaskState.CANCELLED and task.parent.state not in (TaskState.CANCELLED, TaskState.ERROR)


def detach_element_variable(task) -> None:
    """Keep an instance's element variable local to it, as Camunda does, before the instance completes.

    SpiffWorkflow merges a completing instance's variables into the task's (when no loopDataOutputRef collects
    them), element variable included; the next sequential instance would then find it set and fail. It is moved
    to the instance's internal data, where its completion condition still reads it (counters).
    """
    spec = loop_spec(task)
    if spec is None or spec.input_item is None or spec.input_item.bpmn_id not in task.data:
        return
    name = spec.input_item.bpmn_id
    task.internal_data["element_variable"] = {name: task.data.pop(name)}


def counters(task, expression: str) -> dict:
    """Camunda's instance counts and the instance's element variable, when `expression` is the completion condition of the loop `task` is in."""
    from SpiffWorkflow.util.task import TaskState

    spec = loop_spec(task)
    if spec is None or spec.condition is None or expression != spec.condition:
        return {}
    parent = task.parent
    instances = list(spec._instances(parent))
    completed = sum(1 for t in instances if t.state == TaskState.COMPLETED)
    active = sum(1 for t in instances if not t.has_state(TaskState.FINISHED_MASK))
    total = len(instances)
    if "cardinality" in parent.internal_data:  # sequential, by cardinality: instances are made one at a time
        total = parent.internal_data["cardinality"]
    elif "remaining" in parent.internal_data:  # sequential, over a collection
        total += len(parent.internal_data["remaining"])
    return {
        **task.internal_data.get("element_variable", {}),
        "nrOfInstances": total,
        "nrOfCompletedInstances": completed,
        "nrOfActiveInstances": active,
    }
