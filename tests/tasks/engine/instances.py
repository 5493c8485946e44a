"""Drive engine instances the way services will: state stored as JSON between every call."""

import json
from datetime import datetime

from tasks.bpmn import engine


def stored(run: engine.EngineRun) -> dict:
    """The run's state after a trip through JSON, as process_instances.engine_state will hold it."""
    return json.loads(json.dumps(run.state))


def ready_names(run: engine.EngineRun) -> list[str]:
    return [task.name for task in run.ready_user_tasks]


def ready_task(run: engine.EngineRun, name: str) -> engine.ReadyUserTask:
    matches = [task for task in run.ready_user_tasks if task.name == name]
    assert len(matches) == 1, f"expected one open '{name}', open: {ready_names(run)}"
    return matches[0]


def start(spec: dict, now: datetime, **variables) -> engine.EngineRun:
    spec = json.loads(json.dumps(spec))  # the spec is stored as JSON too
    return engine.start(spec=spec, variables=variables, now=now)


def complete(spec: dict, run: engine.EngineRun, name: str, now: datetime, **variables) -> engine.EngineRun:
    """Complete the open task called `name` with `variables`, from the run's stored state."""
    return engine.complete_task(
        spec=json.loads(json.dumps(spec)),
        state=stored(run),
        engine_task_id=ready_task(run, name).engine_task_id,
        variables=variables,
        now=now,
    )


def fire_timers(spec: dict, run: engine.EngineRun, now: datetime) -> engine.EngineRun:
    return engine.fire_due_timers(spec=json.loads(json.dumps(spec)), state=stored(run), now=now)
