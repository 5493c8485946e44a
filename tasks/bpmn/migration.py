"""Move a running instance's engine state onto another version of its definition, with an explicit activity mapping.

An element of the old version keeps its id on the new one unless the mapping names another (`{"review":
"review_v2"}`). Every element the instance is at (ready, waiting or started) and every element it has passed must
have a counterpart on the new version, else nothing is moved and `MigrationRefused` lists the ids without one.
The tasks the instance is at keep their engine ids (our task rows stay keyed by them); they are reset onto the new
element and what follows them is predicted again from the new model (SpiffWorkflow's `migrate_workflow`), so a
waiting timer starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from SpiffWorkflow.bpmn.util.diff import migrate_workflow
from SpiffWorkflow.util.task import TaskState

from .engine import EngineRun, LoadedSpec, _open_task_ids, _outcome, _restore, load_spec
from .errors import EngineError

ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED
PASSED = TaskState.COMPLETED | TaskState.ERROR | TaskState.CANCELLED


class MigrationRefused(EngineError):
    """The instance is at (or has passed) elements with no counterpart on the target version."""

    def __init__(self, detail: str, *, unmapped: list[str]) -> None:
        super().__init__(detail)
        self.unmapped = unmapped


@dataclass
class _Alignment:
    """What migrate_workflow reads of a WorkflowDiff: each task's spec on the new version."""

    alignment: dict = field(default_factory=dict)


def _new_name(name: str, mapping: dict[str, str]) -> str:
    """A task spec's name on the new version: its element's id, or one derived from it ("review.BoundaryEventSplit"
    for the boundary events of `review`), mapped."""
    head, dot, tail = name.partition(".")
    if head in mapping:
        return mapping[head] + dot + tail
    return mapping.get(name, name)


def migrate(
    *,
    spec: dict | LoadedSpec,
    target_spec: dict | LoadedSpec,
    state: dict,
    activity_mapping: dict[str, str],
    now: datetime,
) -> EngineRun:
    """The instance's state moved onto `target_spec`; its open tasks are those of the returned run."""
    loaded, target = load_spec(spec), load_spec(target_spec)
    workflow = _restore(loaded, state, now=now)
    if workflow.subprocesses:
        raise MigrationRefused("an instance inside a subprocess cannot be migrated", unmapped=[])
    open_before = _open_task_ids(workflow, loaded.spec)
    new_specs = target.process.task_specs
    unmapped: set[str] = set()
    diff = _Alignment()
    for task in workflow.get_tasks():
        old = task.task_spec
        new = new_specs.get(_new_name(old.name, activity_mapping))
        if new is not None:
            diff.alignment[task] = new
        elif task.state & (ACTIVE | PASSED):
            unmapped.add(old.bpmn_id or old.name)
        # else a predicted task: dropped below with the branch of the active task it follows
    if unmapped:
        ids = sorted(unmapped)
        raise MigrationRefused(f"no counterpart on the target version for: {', '.join(ids)}", unmapped=ids)
    migrate_workflow(diff, workflow, target.process)
    workflow.subprocess_specs = dict(target.subprocesses)
    kept = {id(new) for new in new_specs.values()}
    stale = sorted(
        {t.task_spec.bpmn_id or t.task_spec.name for t in workflow.get_tasks() if id(t.task_spec) not in kept}
    )
    if stale:
        raise MigrationRefused(f"no counterpart on the target version for: {', '.join(stale)}", unmapped=stale)
    return _outcome(workflow, target.spec, open_before=open_before)


def element_ids(spec: dict | LoadedSpec) -> set[str]:
    """The ids of the BPMN elements of a definition's top-level process."""
    return {task_spec.bpmn_id for task_spec in load_spec(spec).process.task_specs.values() if task_spec.bpmn_id}
