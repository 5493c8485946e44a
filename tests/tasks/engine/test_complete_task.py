"""complete_task refuses what it cannot do, and never changes the caller's stored data."""

import copy
import uuid
from datetime import timedelta

import pytest

from tasks.bpmn import engine

from .instances import complete, ready_task, start, stored


def test_completing_a_task_that_is_not_open_is_refused(demo_definition, t0):
    spec = demo_definition.spec
    run = start(spec, t0)
    intake_id = ready_task(run, "Intake review").engine_task_id
    after = complete(spec, run, "Intake review", t0, received_on="2026-03-01", received_via="EMAIL")

    with pytest.raises(engine.TaskNotReady) as caught:
        engine.complete_task(spec=spec, state=stored(after), engine_task_id=intake_id, variables={}, now=t0)

    assert caught.value.element_id == "intake_review"


@pytest.mark.parametrize("task_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_completing_an_unknown_task_is_refused(demo_definition, t0, task_id):
    run = start(demo_definition.spec, t0)

    with pytest.raises(engine.TaskNotReady):
        engine.complete_task(spec=demo_definition.spec, state=stored(run), engine_task_id=task_id, variables={}, now=t0)


def test_a_cancelled_triage_cannot_be_completed_after_escalation(demo_definition, t0):
    spec = demo_definition.spec
    run = complete(spec, start(spec, t0), "Intake review", t0, received_on="2026-03-01", received_via="EMAIL")
    triage_id = ready_task(run, "Triage").engine_task_id
    escalated = engine.fire_due_timers(spec=spec, state=stored(run), now=t0 + timedelta(hours=49))

    with pytest.raises(engine.TaskNotReady):
        engine.complete_task(
            spec=spec, state=stored(escalated), engine_task_id=triage_id, variables={"allegation_type": "FRAUD"}, now=t0
        )


def test_variables_that_do_not_fit_the_form_are_refused_per_field(demo_definition, t0):
    spec = demo_definition.spec
    run = start(spec, t0)

    with pytest.raises(engine.TaskDataError) as caught:
        complete(spec, run, "Intake review", t0, received_on="yesterday", received_via="FAX", anonymous="yes")

    assert caught.value.field_errors == {
        "received_on": "Must be a date (YYYY-MM-DD).",
        "received_via": "Must be one of: EMAIL, PHONE, WEB, LETTER.",
        "anonymous": "Must be true or false.",
    }


def test_a_missing_required_field_is_refused(demo_definition, t0):
    spec = demo_definition.spec
    run = complete(spec, start(spec, t0), "Intake review", t0, received_on="2026-03-01", received_via="EMAIL")

    with pytest.raises(engine.TaskDataError) as caught:
        complete(spec, run, "Triage", t0, triage_notes="forgot the type")

    assert caught.value.field_errors == {"allegation_type": "This field is required."}


def test_engine_calls_leave_the_given_spec_and_state_unchanged(demo_definition, t0):
    spec = copy.deepcopy(demo_definition.spec)
    run = complete(spec, start(spec, t0), "Intake review", t0, received_on="2026-03-01", received_via="EMAIL")
    state = stored(run)
    spec_before, state_before = copy.deepcopy(spec), copy.deepcopy(state)

    engine.fire_due_timers(spec=spec, state=state, now=t0 + timedelta(hours=49))
    engine.complete_task(
        spec=spec,
        state=state,
        engine_task_id=ready_task(run, "Triage").engine_task_id,
        variables={"allegation_type": "FRAUD"},
        now=t0,
    )
    engine.cancel(spec=spec, state=state)

    assert (spec, state) == (spec_before, state_before)


def test_now_must_be_timezone_aware(demo_definition, t0):
    with pytest.raises(ValueError):
        engine.start(spec=demo_definition.spec, variables={}, now=t0.replace(tzinfo=None))
