"""Timers fire by moving the `now` each call is given, never by sleeping."""

from datetime import timedelta

from tasks.bpmn import engine

from .documents import bpmn_document, user_task
from .instances import complete, fire_timers, ready_names, ready_task, start, stored

ESCALATION_DELAY = timedelta(hours=48)


def at_triage(definition, t0) -> engine.EngineRun:
    run = start(definition.spec, t0)
    return complete(definition.spec, run, "Intake review", t0, received_on="2026-03-01", received_via="EMAIL")


def test_triage_reports_when_its_escalation_timer_is_due(demo_definition, t0):
    run = at_triage(demo_definition, t0)

    assert run.next_timer_due_at == t0 + ESCALATION_DELAY


def test_the_escalation_timer_does_not_fire_before_48_hours(demo_definition, t0):
    run = at_triage(demo_definition, t0)

    later = fire_timers(demo_definition.spec, run, t0 + ESCALATION_DELAY - timedelta(seconds=1))

    assert ready_names(later) == ["Triage"]
    assert later.closed_task_ids == later.opened_task_ids == []
    assert ready_task(later, "Triage").engine_task_id == ready_task(run, "Triage").engine_task_id


def test_after_48_hours_the_timer_cancels_triage_and_opens_escalated_triage(demo_definition, t0):
    run = at_triage(demo_definition, t0)
    triage_id = ready_task(run, "Triage").engine_task_id

    escalated = fire_timers(demo_definition.spec, run, t0 + ESCALATION_DELAY + timedelta(minutes=1))

    task = ready_task(escalated, "Escalated triage")
    assert (task.queue_name, task.priority) == ("escalations", 80)
    assert escalated.ready_user_tasks == [task]
    assert escalated.closed_task_ids == [triage_id]
    assert escalated.opened_task_ids == [task.engine_task_id]
    assert escalated.next_timer_due_at is None


def test_an_escalated_triage_continues_to_the_allegation_gateway(demo_definition, t0):
    spec = demo_definition.spec
    run = fire_timers(spec, at_triage(demo_definition, t0), t0 + timedelta(hours=49))

    run = complete(spec, run, "Escalated triage", t0 + timedelta(hours=50), allegation_type="FRAUD")

    assert ready_names(run) == ["Fraud investigation"]


def test_firing_timers_twice_escalates_once(demo_definition, t0):
    spec = demo_definition.spec
    escalated = fire_timers(spec, at_triage(demo_definition, t0), t0 + timedelta(hours=49))

    again = fire_timers(spec, escalated, t0 + timedelta(hours=100))

    assert ready_names(again) == ["Escalated triage"]
    assert again.opened_task_ids == again.closed_task_ids == []


def test_triage_done_in_time_leaves_no_timer_to_fire(demo_definition, t0):
    spec = demo_definition.spec
    run = complete(
        spec, at_triage(demo_definition, t0), "Triage", t0 + timedelta(hours=47), allegation_type="MISCONDUCT"
    )

    later = fire_timers(spec, run, t0 + timedelta(hours=100))

    assert run.next_timer_due_at is None
    assert ready_names(later) == ["Misconduct review"]


NON_INTERRUPTING = bpmn_document(
    '    <bpmn:startEvent id="start"/>\n'
    + user_task("review")
    + '\n    <bpmn:boundaryEvent id="reminder" attachedToRef="review" cancelActivity="false">'
    "<bpmn:timerEventDefinition><bpmn:timeDuration>P1D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>\n"
    + user_task("chase", "escalations")
    + '\n    <bpmn:endEvent id="end"/><bpmn:endEvent id="chased"/>'
    '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>'
    '<bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="end"/>'
    '<bpmn:sequenceFlow id="f3" sourceRef="reminder" targetRef="chase"/>'
    '<bpmn:sequenceFlow id="f4" sourceRef="chase" targetRef="chased"/>'
)


def test_a_non_interrupting_timer_opens_its_task_and_keeps_the_original(t0):
    definition = engine.parse_definition(bpmn_xml=NON_INTERRUPTING)
    run = start(definition.spec, t0)

    later = fire_timers(definition.spec, run, t0 + timedelta(days=1, seconds=1))

    assert sorted(ready_names(later)) == ["Chase", "Review"]
    assert later.closed_task_ids == []
    assert [t.name for t in later.ready_user_tasks if t.engine_task_id in later.opened_task_ids] == ["Chase"]


INTERMEDIATE = bpmn_document(
    '    <bpmn:startEvent id="start"/>\n'
    + user_task("send_letter")
    + '\n    <bpmn:intermediateCatchEvent id="cooling_off"><bpmn:timerEventDefinition>'
    '<bpmn:timeDuration>"P14D"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>\n'
    + user_task("follow_up")
    + '\n    <bpmn:endEvent id="end"/>'
    '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="send_letter"/>'
    '<bpmn:sequenceFlow id="f2" sourceRef="send_letter" targetRef="cooling_off"/>'
    '<bpmn:sequenceFlow id="f3" sourceRef="cooling_off" targetRef="follow_up"/>'
    '<bpmn:sequenceFlow id="f4" sourceRef="follow_up" targetRef="end"/>'
)


def test_an_intermediate_timer_waits_until_due_then_continues(t0):
    definition = engine.parse_definition(bpmn_xml=INTERMEDIATE)
    run = complete(definition.spec, start(definition.spec, t0), "Send_Letter", t0)
    assert (run.ready_user_tasks, run.next_timer_due_at) == ([], t0 + timedelta(days=14))

    early = fire_timers(definition.spec, run, t0 + timedelta(days=13))
    due = fire_timers(definition.spec, early, t0 + timedelta(days=14))

    assert ready_names(early) == []
    assert ready_names(due) == ["Follow_Up"]


DATE_TIMER = bpmn_document(
    '    <bpmn:startEvent id="start"/>\n'
    '    <bpmn:intermediateCatchEvent id="hearing_day"><bpmn:timerEventDefinition>'
    "<bpmn:timeDate>2026-04-01T09:00:00Z</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>\n"
    + user_task("attend_hearing")
    + '\n    <bpmn:endEvent id="end"/>'
    '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="hearing_day"/>'
    '<bpmn:sequenceFlow id="f2" sourceRef="hearing_day" targetRef="attend_hearing"/>'
    '<bpmn:sequenceFlow id="f3" sourceRef="attend_hearing" targetRef="end"/>'
)


def test_a_date_timer_fires_at_its_date(t0):
    definition = engine.parse_definition(bpmn_xml=DATE_TIMER)
    run = start(definition.spec, t0)
    due_at = run.next_timer_due_at

    before = fire_timers(definition.spec, run, due_at - timedelta(seconds=1))
    after = fire_timers(definition.spec, run, due_at)

    assert due_at.isoformat() == "2026-04-01T09:00:00+00:00"
    assert (ready_names(before), ready_names(after)) == ([], ["Attend_Hearing"])


def test_state_with_a_pending_timer_is_plain_json(demo_definition, t0):
    run = at_triage(demo_definition, t0)

    assert stored(run) == run.state
