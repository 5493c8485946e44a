"""Event subprocesses of a process, on SpiffWorkflow 3.2, which parses them and starts one on its event but leaves
three things to the engine that runs it:

- it starts a message, signal, error or escalation one by connecting it into the process spec in place, and this
  engine shares a spec between instances (engine.LoadedSpec): a definition with one gets a process spec of its own
  per engine call (process_spec), connected again as its instance's state says (reconnect);
- it does not interrupt the process when an interrupting one starts (settle cancels the rest of the process);
- a timer one waits from the process's start, so the process would not end while its timer is pending (settle
  lets those that did not start go once the rest of the process is done).

They sit in the process itself (parsing.py refuses them inside a subprocess, where SpiffWorkflow 3.2 starts none
on a message, signal or error). `info` is ParsedDefinition.spec["event_subprocesses"]: per id, the kind of its
start event, the message or signal name, and whether it interrupts.
"""

from __future__ import annotations

import copy

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.util.task import TaskState

from .spiff import SERIALIZER

_ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED
_STARTED_EVENT = TaskState.READY | TaskState.STARTED | TaskState.COMPLETED


def _info(workflow: BpmnWorkflow) -> dict:
    return getattr(workflow.script_engine, "event_subprocesses", None) or {}


def process_spec(loaded):
    """The process spec to run an instance of `loaded` (engine.LoadedSpec) with: the shared one, or a fresh copy when
    SpiffWorkflow would connect an event subprocess into it as it starts (all kinds but timer)."""
    info = loaded.spec.get("event_subprocesses") or {}
    if all(item["kind"] == "timer" for item in info.values()):
        return loaded.process
    return SERIALIZER.from_dict(copy.deepcopy(loaded.spec["spec"]))


def reconnect(workflow: BpmnWorkflow) -> None:
    """Connect into the (fresh) process spec the event subprocesses the restored instance started earlier, as
    SpiffWorkflow connected them then (BpmnStartTask.trigger_wf), so that they lead to the process's end."""
    if not _info(workflow):
        return
    start = workflow.spec.start
    for task in workflow.task_tree.children:
        spec = task.task_spec
        if getattr(spec, "bpmn_id", None) in _info(workflow) and start not in spec.inputs:
            start.connect(spec)
            spec.connect(workflow.spec.end)


def _tasks(workflow: BpmnWorkflow) -> list:
    """The instance's event subprocess tasks: those started and, for timers, those waiting from the start."""
    info = _info(workflow)
    return [task for task in workflow.task_tree.children if getattr(task.task_spec, "bpmn_id", None) in info]


def _started(workflow: BpmnWorkflow, task) -> bool:
    """Whether the event subprocess of `task` has caught its event (its start event fired)."""
    subprocess = workflow.subprocesses.get(task.id)
    if subprocess is None:
        return task.has_state(TaskState.FINISHED_MASK)
    return any(
        isinstance(inner.task_spec, StartEvent) and inner.has_state(_STARTED_EVENT) for inner in subprocess.get_tasks()
    )


def _lead_to_the_end(tasks: list) -> None:
    """Give the started event subprocess tasks the path to the process's end they were connected to: SpiffWorkflow
    3.2 connects a triggered one's spec to the end join but makes its task no child there, so the process would
    end, on the event subprocess's completion, without passing its end join (and its variables)."""
    for task in tasks:
        if not task.children and task.task_spec.outputs and not task.has_state(TaskState.FINISHED_MASK):
            task._sync_children(task.task_spec.outputs, TaskState.FUTURE)


def _interrupted(workflow: BpmnWorkflow) -> bool:
    return any(task.internal_data.get("interrupted") for task in _tasks(workflow))


def settle(workflow: BpmnWorkflow) -> bool:
    """After the engine's steps: interrupt the process for an interrupting event subprocess that started, or let go
    of the event subprocesses that did not start once the rest of the process is done. True when it changed the
    instance (the engine then steps again)."""
    info = _info(workflow)
    if not info or workflow.is_completed():
        return False
    tasks = _tasks(workflow)
    _lead_to_the_end(tasks)
    for task in tasks:
        if (
            info[task.task_spec.bpmn_id]["interrupting"]
            and not task.internal_data.get("interrupted")
            and not task.has_state(TaskState.FINISHED_MASK)
            and _started(workflow, task)
        ):
            task.internal_data["interrupted"] = True
            for other in list(workflow.task_tree.children):
                if other is not task:
                    other.cancel()  # a finished one cancels what follows it
            return True
    idle = [task for task in tasks if not task.has_state(TaskState.FINISHED_MASK) and not _started(workflow, task)]
    if not idle:
        return False
    busy = [
        task
        for task in workflow.get_tasks(state=_ACTIVE)
        if task.workflow is workflow
        and task not in idle
        and not isinstance(task.task_spec, _EndJoin)
        and task.task_spec.name != "End"
    ]
    if busy:
        return False
    for task in idle:
        task.cancel()
    for join in workflow.get_tasks(state=TaskState.WAITING):
        if join.workflow is workflow and isinstance(join.task_spec, _EndJoin):
            join.task_spec._update(join)  # as a finished predecessor would: the end join looks again
    return True


def listening(workflow: BpmnWorkflow, kind: str, name: str | None = None) -> list[str]:
    """The ids of the event subprocesses that would start now on a `kind` ("message", "signal") event named
    `name` (any name when None): none once an interrupting one has started or the process has ended."""
    if workflow.is_completed() or _interrupted(workflow):
        return []
    return sorted(
        es_id
        for es_id, item in _info(workflow).items()
        if item["kind"] == kind and (name is None or item["name"] == name)
    )


def listening_names(workflow: BpmnWorkflow, kind: str) -> set[str]:
    return {_info(workflow)[es_id]["name"] for es_id in listening(workflow, kind)}


def start_definition(workflow: BpmnWorkflow, es_id: str):
    """The event definition of the start event of the event subprocess `es_id`."""
    spec = next(spec for spec in workflow.spec.task_specs.values() if getattr(spec, "bpmn_id", None) == es_id)
    return workflow.subprocess_specs[spec.spec].bpmn_start_events[0].event_definition


def error_catcher(workflow: BpmnWorkflow, error_code: str):
    """The event definition to raise `error_code` with so that an error event subprocess starts on it (one naming
    the code before a catch-all), or None when none would."""
    if workflow.is_completed() or _interrupted(workflow):
        return None
    found = [
        start_definition(workflow, es_id) for es_id, item in sorted(_info(workflow).items()) if item["kind"] == "error"
    ]
    catching = [definition for definition in found if definition.code in (None, error_code)]
    if not catching:
        return None
    definition = copy.copy(min(catching, key=lambda d: d.code is None))
    definition.code = error_code
    return definition


def seed(workflow: BpmnWorkflow, before: set, data: dict) -> None:
    """Give the event subprocesses started since `before` (the instance's subprocess ids then) the process
    variables and the event's, as their first data: SpiffWorkflow starts one with the data of the process's
    start."""
    _lead_to_the_end(_tasks(workflow))
    for task_id, subprocess in workflow.subprocesses.items():
        if task_id in before:
            continue
        parent = workflow.get_task_from_id(task_id)
        if getattr(parent.task_spec, "bpmn_id", None) not in _info(workflow):
            continue
        for inner in subprocess.get_tasks():
            if isinstance(inner.task_spec, StartEvent):
                inner.data.update(copy.deepcopy(data))
