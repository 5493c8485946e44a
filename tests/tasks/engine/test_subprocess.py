"""An embedded subprocess runs its user tasks in the subprocess's lane and then carries on."""

from tasks.bpmn import engine

from .documents import bpmn_document, linear_process, user_task
from .instances import complete, ready_names, ready_task, start

LEGAL_ADVICE = bpmn_document(
    '    <bpmn:laneSet id="lanes"><bpmn:lane id="lane" name="legal-review">'
    "<bpmn:flowNodeRef>advice</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n"
    + linear_process(
        '    <bpmn:subProcess id="advice" name="Advice">'
        '<bpmn:startEvent id="advice_start"/><bpmn:userTask id="draft_advice" name="Draft advice"/>'
        '<bpmn:endEvent id="advice_end"/>'
        '<bpmn:sequenceFlow id="a1" sourceRef="advice_start" targetRef="draft_advice"/>'
        '<bpmn:sequenceFlow id="a2" sourceRef="draft_advice" targetRef="advice_end"/>'
        "</bpmn:subProcess>",
        user_task("closure"),
        node_ids=["advice", "closure"],
    )
)


def test_a_subprocess_user_task_opens_then_the_process_continues(t0):
    definition = engine.parse_definition(bpmn_xml=LEGAL_ADVICE)
    run = start(definition.spec, t0)
    assert ready_task(run, "Draft advice").queue_name == "legal-review"

    run = complete(definition.spec, run, "Draft advice", t0, advice="Proceed.")

    assert ready_names(run) == ["Closure"]
    assert run.variables["advice"] == "Proceed."


def test_cancelling_inside_a_subprocess_closes_the_subprocess_task(t0):
    definition = engine.parse_definition(bpmn_xml=LEGAL_ADVICE)
    run = start(definition.spec, t0)

    cancelled = engine.cancel(spec=definition.spec, state=run.state)

    assert cancelled.closed_task_ids == [ready_task(run, "Draft advice").engine_task_id]
