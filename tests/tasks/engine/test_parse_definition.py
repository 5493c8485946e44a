"""parse_definition: what it reads from a model, and what it refuses."""

import json

import pytest

from tasks.bpmn import engine

from .documents import bpmn_document, linear_process, user_task


def test_demo_definition_names_its_process_and_every_queue_it_routes_to(demo_definition):
    assert demo_definition.process_key == "onecms_case_handling"
    assert demo_definition.name == "OneCMS case handling"
    assert demo_definition.queue_names == ["intake", "triage", "escalations", "fraud-investigation", "legal-review"]


def test_demo_user_tasks_take_their_queue_from_their_lane(demo_definition):
    queues = {task.name: task.queue_name for task in demo_definition.user_tasks}

    assert queues == {
        "Intake review": "intake",
        "Triage": "triage",
        "Escalated triage": "escalations",
        "Fraud investigation": "fraud-investigation",
        "Misconduct review": "triage",
        "Legal review": "legal-review",
        "Closure": "triage",
    }


def test_demo_user_tasks_carry_priority_skills_and_sla_from_their_properties(demo_definition):
    tasks = {task.id: task for task in demo_definition.user_tasks}

    assert (tasks["fraud_investigation"].priority, tasks["fraud_investigation"].required_skills) == (70, ["fraud"])
    assert tasks["fraud_investigation"].sla_hours == 240
    assert (tasks["escalated_triage"].priority, tasks["escalated_triage"].sla_hours) == (80, 24)
    assert tasks["triage"].required_skills == []
    assert tasks["triage"].documentation.startswith("Classify the allegation")


def test_demo_triage_form_requires_an_allegation_type_from_a_fixed_list(demo_definition):
    triage = next(task for task in demo_definition.user_tasks if task.id == "triage")
    allegation_type = triage.form_fields[0]

    assert (allegation_type.id, allegation_type.type, allegation_type.required) == ("allegation_type", "enum", True)
    assert [value.id for value in allegation_type.enum_values] == ["FRAUD", "MISCONDUCT", "CONFLICT_OF_INTEREST"]


def test_demo_investigation_form_requires_a_recommendation_and_takes_findings(demo_definition):
    investigation = next(task for task in demo_definition.user_tasks if task.id == "fraud_investigation")
    fields = {f.id: (f.type, f.required) for f in investigation.form_fields}

    assert fields == {
        "recommend_action": ("boolean", True),
        "findings": ("text", False),
        "estimated_loss": ("long", False),
    }


def test_spec_survives_json_storage(demo_definition):
    assert json.loads(json.dumps(demo_definition.spec)) == demo_definition.spec


def test_candidate_group_property_overrides_the_lane():
    document = bpmn_document(
        '    <bpmn:laneSet id="lanes"><bpmn:lane id="lane" name="intake">'
        "<bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n"
        + linear_process(
            '    <bpmn:userTask id="review"><bpmn:extensionElements><spiffworkflow:properties>'
            '<spiffworkflow:property name="candidateGroup" value="legal-review"/>'
            "</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>",
            node_ids=["review"],
        )
    )

    parsed = engine.parse_definition(bpmn_xml=document)

    assert parsed.user_tasks[0].queue_name == "legal-review"


@pytest.mark.parametrize("prefix", ["camunda", "flowable"])
def test_candidate_groups_attribute_names_queue_and_candidate_groups(prefix):
    document = bpmn_document(
        linear_process(
            f'    <bpmn:userTask id="review" {prefix}:candidateGroups="triage, escalations"/>', node_ids=["review"]
        )
    )

    task = engine.parse_definition(bpmn_xml=document).user_tasks[0]

    assert (task.queue_name, task.candidate_groups) == ("triage", ["triage", "escalations"])


def test_tasks_inside_an_embedded_subprocess_work_in_the_subprocess_lane():
    document = bpmn_document(
        '    <bpmn:laneSet id="lanes"><bpmn:lane id="lane" name="legal-review">'
        "<bpmn:flowNodeRef>advice</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n"
        + linear_process(
            '    <bpmn:subProcess id="advice">'
            '<bpmn:startEvent id="advice_start"/><bpmn:userTask id="draft_advice"/><bpmn:endEvent id="advice_end"/>'
            '<bpmn:sequenceFlow id="a1" sourceRef="advice_start" targetRef="draft_advice"/>'
            '<bpmn:sequenceFlow id="a2" sourceRef="draft_advice" targetRef="advice_end"/>'
            "</bpmn:subProcess>",
            node_ids=["advice"],
        )
    )

    parsed = engine.parse_definition(bpmn_xml=document)

    assert [(task.id, task.queue_name) for task in parsed.user_tasks] == [("draft_advice", "legal-review")]


# --- refusals ---------------------------------------------------------------------------------------------


def refusal(document: str) -> engine.BpmnError:
    with pytest.raises(engine.BpmnError) as caught:
        engine.parse_definition(bpmn_xml=document)
    return caught.value


def test_text_that_is_not_xml_is_refused_with_its_line():
    error = refusal("<bpmn:definitions>\n  <unclosed>\n</bpmn:definitions>")

    assert "not well-formed XML" in error.detail
    assert error.line is not None


@pytest.mark.parametrize("text", ["", "   ", "just words"])
def test_empty_or_plain_text_is_refused(text):
    assert refusal(text).detail


def test_xml_that_is_not_bpmn_is_refused():
    error = refusal('<?xml version="1.0"?>\n<html><body/></html>')

    assert "not a BPMN 2.0 document" in error.detail


def test_bpmn_that_breaks_the_schema_is_refused_with_its_line():
    document = bpmn_document('    <bpmn:startEvent id="start" bogus="1"><bpmn:nonsense/></bpmn:startEvent>')

    error = refusal(document)

    assert "not valid BPMN 2.0" in error.detail
    assert error.line == 4


def test_a_definition_without_an_executable_process_is_refused():
    document = bpmn_document(linear_process(user_task("review"), node_ids=["review"]), executable="false")

    assert "no executable process" in refusal(document).detail


def test_a_send_task_is_refused_naming_it():
    document = bpmn_document(
        linear_process('    <bpmn:sendTask id="notify_complainant"/>', node_ids=["notify_complainant"])
    )

    error = refusal(document)

    assert error.element_id == "notify_complainant"
    assert "sendTask" in error.detail
    assert error.line == 5


def test_a_message_event_naming_no_message_is_refused_naming_the_event():
    document = bpmn_document(
        linear_process(
            '    <bpmn:intermediateCatchEvent id="await_reply"><bpmn:messageEventDefinition/></bpmn:intermediateCatchEvent>',
            node_ids=["await_reply"],
        )
    )

    error = refusal(document)

    assert error.element_id == "await_reply"


def test_a_message_start_event_naming_no_message_is_refused():
    document = bpmn_document(
        '    <bpmn:startEvent id="start"><bpmn:messageEventDefinition id="m"/></bpmn:startEvent>'
        '<bpmn:endEvent id="end"/><bpmn:sequenceFlow id="f" sourceRef="start" targetRef="end"/>'
    )

    error = refusal(document)

    assert (error.element_id, "messageEventDefinition" in error.detail) == ("m", True)


def test_messages_at_document_level_are_read_and_name_the_processs_message_starts():
    document = bpmn_document(
        '    <bpmn:startEvent id="start"><bpmn:messageEventDefinition id="m" messageRef="complaint_received"/>'
        "</bpmn:startEvent>\n"
        + user_task("review")
        + '\n    <bpmn:endEvent id="end"/><bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="review"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="review" targetRef="end"/>',
        before_process='  <bpmn:message id="complaint_received" name="complaint"/>\n',
    )

    parsed = engine.parse_definition(bpmn_xml=document)

    assert parsed.spec["message_start_names"] == ["complaint"] and parsed.start_queue_names == ["triage"]


def test_a_message_start_event_inside_a_subprocess_is_refused():
    document = bpmn_document(
        linear_process(
            '    <bpmn:subProcess id="inner"><bpmn:startEvent id="inner_start">'
            '<bpmn:messageEventDefinition messageRef="complaint_received"/></bpmn:startEvent></bpmn:subProcess>',
            node_ids=["inner"],
        ),
        before_process='  <bpmn:message id="complaint_received" name="complaint"/>\n',
    )

    error = refusal(document)

    assert error.element_id == "inner_start" and "only the process's own start events" in error.detail


def test_a_standard_loop_task_is_refused():
    document = bpmn_document(
        linear_process(
            '    <bpmn:userTask id="review" camunda:candidateGroups="triage">'
            '<bpmn:standardLoopCharacteristics loopMaximum="3"/></bpmn:userTask>',
            node_ids=["review"],
        )
    )

    assert refusal(document).element_id == "review"


def test_a_service_task_is_refused():
    document = bpmn_document(linear_process('    <bpmn:serviceTask id="call_crm"/>', node_ids=["call_crm"]))

    assert refusal(document).element_id == "call_crm"


def test_an_exclusive_gateway_with_no_outgoing_flow_is_refused_naming_it():
    document = bpmn_document(
        '    <bpmn:startEvent id="start"/>\n'
        '    <bpmn:exclusiveGateway id="dead_end"/>\n'
        '    <bpmn:sequenceFlow id="f" sourceRef="start" targetRef="dead_end"/>'
    )

    error = refusal(document)

    assert (error.element_id, error.line) == ("dead_end", 5)
    assert "no outgoing sequence flow" in error.detail


def test_a_gateway_branch_without_condition_that_is_not_the_default_is_refused():
    document = bpmn_document(
        '    <bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="choose"/>\n'
        + user_task("a")
        + user_task("b")
        + '\n    <bpmn:endEvent id="end"/>'
        '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="choose"/>'
        '<bpmn:sequenceFlow id="to_a" sourceRef="choose" targetRef="a"/>'
        '<bpmn:sequenceFlow id="to_b" sourceRef="choose" targetRef="b">'
        "<bpmn:conditionExpression>x == 1</bpmn:conditionExpression></bpmn:sequenceFlow>"
        '<bpmn:sequenceFlow id="f3" sourceRef="a" targetRef="end"/><bpmn:sequenceFlow id="f4" sourceRef="b" targetRef="end"/>'
    )

    assert refusal(document).element_id == "to_a"


def test_a_user_task_without_a_queue_is_refused_naming_it():
    document = bpmn_document(linear_process('    <bpmn:userTask id="orphan" name="Orphan"/>', node_ids=["orphan"]))

    error = refusal(document)

    assert (error.element_id, error.line) == ("orphan", 5)
    assert "no queue" in error.detail


def test_a_lane_name_that_is_not_a_queue_name_is_refused():
    document = bpmn_document(
        '    <bpmn:laneSet id="lanes"><bpmn:lane id="lane" name="Triage team">'
        "<bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>\n"
        + linear_process('    <bpmn:userTask id="review"/>', node_ids=["review"])
    )

    assert "not a valid queue name" in refusal(document).detail


@pytest.mark.parametrize(
    ("name", "value"), [("priority", "101"), ("priority", "high"), ("slaHours", "-4"), ("requiredSkills", "fraud team")]
)
def test_out_of_range_task_properties_are_refused(name, value):
    properties = (
        f'<spiffworkflow:properties><spiffworkflow:property name="{name}" value="{value}"/></spiffworkflow:properties>'
    )
    document = bpmn_document(linear_process(user_task("review", extensions=properties), node_ids=["review"]))

    assert refusal(document).element_id == "review"


def test_a_form_field_of_unknown_type_is_refused():
    form = '<camunda:formData><camunda:formField id="amount" type="money"/></camunda:formData>'
    document = bpmn_document(linear_process(user_task("review", extensions=form), node_ids=["review"]))

    error = refusal(document)

    assert "money" in error.detail


def test_a_timer_with_an_invalid_duration_is_refused():
    document = bpmn_document(
        linear_process(
            '    <bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>'
            "<bpmn:timeDuration>PT48X</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>",
            node_ids=["wait"],
        )
    )

    assert refusal(document).element_id == "wait"


def test_a_cycle_timer_is_refused():
    document = bpmn_document(
        linear_process(
            '    <bpmn:intermediateCatchEvent id="every_day"><bpmn:timerEventDefinition>'
            "<bpmn:timeCycle>R3/PT24H</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>",
            node_ids=["every_day"],
        )
    )

    assert "timeCycle" in refusal(document).detail


def test_a_doctype_is_refused():
    document = '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e "boom">]>\n' + bpmn_document("").split("\n", 1)[1]

    assert "DOCTYPE" in refusal(document).detail


def test_demo_file_draws_every_element_so_editors_can_render_it():
    from lxml import etree

    from .documents import DEMO_FILE

    root = etree.parse(str(DEMO_FILE)).getroot()
    namespaces = {"bpmn": engine.BPMN_NS, "bpmndi": engine.BPMNDI_NS}
    drawable = {
        element.get("id")
        for element in root.xpath("//bpmn:process//bpmn:*[@id] | //bpmn:participant", namespaces=namespaces)
        if etree.QName(element).localname not in ("laneSet", "timerEventDefinition")
    }
    drawn = set(root.xpath("//bpmndi:BPMNShape/@bpmnElement | //bpmndi:BPMNEdge/@bpmnElement", namespaces=namespaces))

    assert drawable == drawn


def test_a_date_timer_given_a_duration_is_refused():
    document = bpmn_document(
        linear_process(
            '    <bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>'
            "<bpmn:timeDate>PT48H</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>",
            node_ids=["wait"],
        )
    )

    assert "date-time" in refusal(document).detail
