"""A spec loaded once (engine.load_spec) runs any number of instances, interleaved, as the stored spec would."""

import json
from datetime import timedelta

from tasks.bpmn import engine
from tasks.bpmn.spiff import SERIALIZER

from .instances import ready_names, ready_task, stored

INTAKE = {"received_on": "2026-03-01", "received_via": "EMAIL"}


def _complete(spec, run, name, now, **variables):
    return engine.complete_task(
        spec=spec, state=stored(run), engine_task_id=ready_task(run, name).engine_task_id, variables=variables, now=now
    )


def test_instances_sharing_a_loaded_spec_keep_their_own_state(demo_definition, t0):
    loaded = engine.load_spec(json.loads(json.dumps(demo_definition.spec)))
    first = engine.start(spec=loaded, variables={"case_number": "C-1"}, now=t0)
    second = engine.start(spec=loaded, variables={"case_number": "C-2"}, now=t0)

    first = _complete(loaded, first, "Intake review", t0, received_on="2026-03-01", received_via="EMAIL")
    second = _complete(loaded, second, "Intake review", t0, received_on="2026-03-02", received_via="PHONE")
    second = _complete(loaded, second, "Triage", t0, allegation_type="FRAUD")

    assert ready_names(first) == ["Triage"]
    assert first.variables["received_via"] == "EMAIL" and "allegation_type" not in first.variables
    assert second.variables["allegation_type"] == "FRAUD" and second.variables["case_number"] == "C-2"


def test_a_loaded_spec_gives_what_the_stored_spec_gives(demo_definition, t0):
    spec = json.loads(json.dumps(demo_definition.spec))
    loaded = engine.load_spec(spec)
    from_dict = engine.start(spec=spec, variables={"case_number": "C-1"}, now=t0)
    from_loaded = engine.start(spec=loaded, variables={"case_number": "C-1"}, now=t0)

    late = t0 + timedelta(hours=49)
    from_dict = engine.fire_due_timers(
        spec=spec, state=stored(_complete(spec, from_dict, "Intake review", t0, **INTAKE)), now=late
    )
    from_loaded = engine.fire_due_timers(
        spec=loaded,
        state=stored(_complete(loaded, from_loaded, "Intake review", t0, **INTAKE)),
        now=late,
    )

    assert ready_names(from_loaded) == ready_names(from_dict)
    assert from_loaded.variables == from_dict.variables
    assert from_loaded.next_timer_due_at == from_dict.next_timer_due_at
    assert engine.element_states(spec=loaded, state=stored(from_loaded)) == engine.element_states(
        spec=spec, state=stored(from_dict)
    )


def test_the_stored_state_carries_no_spec(demo_definition, t0):
    run = engine.start(spec=engine.load_spec(demo_definition.spec), variables={}, now=t0)

    assert "spec" not in run.state and "subprocess_specs" not in run.state
    assert run.state[SERIALIZER.VERSION_KEY] == SERIALIZER.VERSION
