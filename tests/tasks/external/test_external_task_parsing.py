"""Deploy-time checks of serviceTasks: external ones (Camunda Modeler's shape) are read; any other is refused with
its id and line."""

import pytest

from tasks.bpmn import engine

from .conftest import RECORDS_CHECK_FILE

MODEL = RECORDS_CHECK_FILE.read_text()
SERVICE_TASK = 'camunda:type="external" camunda:topic="records-check" camunda:taskPriority="60"'


def test_an_external_service_task_is_read_with_its_topic_and_priority():
    parsed = engine.parse_definition(bpmn_xml=MODEL)

    assert [(t.id, t.topic_name, t.priority) for t in parsed.external_tasks] == [
        ("Activity_records_check", "records-check", 60)
    ]


@pytest.mark.parametrize(
    "attributes, message",
    [
        ('camunda:class="org.example.Check"', 'camunda:type="external"'),
        ('camunda:type="external" camunda:topic="records check!"', "topic"),
        ('camunda:type="external" camunda:topic="records-check" camunda:taskPriority="high"', "taskPriority"),
    ],
)
def test_other_service_tasks_are_refused_naming_the_element_and_its_line(attributes, message):
    model = MODEL.replace(SERVICE_TASK, attributes)

    with pytest.raises(engine.BpmnError) as refused:
        engine.parse_definition(bpmn_xml=model)

    assert refused.value.element_id == "Activity_records_check"
    assert refused.value.line == 7
    assert message in refused.value.detail


ERRORS_MODEL = (RECORDS_CHECK_FILE.parent / "records_check_errors.bpmn").read_text()


def test_an_error_boundary_event_on_an_external_task_is_read_with_its_code_and_message_variables():
    parsed = engine.parse_definition(bpmn_xml=ERRORS_MODEL)

    assert parsed.spec["error_variables"] == {"Event_no_record": {"code": "error_code", "message": "error_message"}}


def test_an_escalation_boundary_event_on_an_external_task_is_refused_naming_it():
    model = ERRORS_MODEL.replace(
        '<bpmn:errorEventDefinition id="ErrorEventDefinition_no_record" errorRef="Error_no_record" '
        'camunda:errorCodeVariable="error_code" camunda:errorMessageVariable="error_message" />',
        '<bpmn:escalationEventDefinition id="EscalationEventDefinition_1" />',
    )

    with pytest.raises(engine.BpmnError) as refused:
        engine.parse_definition(bpmn_xml=model)

    assert refused.value.element_id == "Event_no_record" and refused.value.line == 20
    assert "attach it to one" in refused.value.detail


def test_an_error_variable_that_is_not_a_name_is_refused():
    model = ERRORS_MODEL.replace('camunda:errorCodeVariable="error_code"', 'camunda:errorCodeVariable="error code"')

    with pytest.raises(engine.BpmnError) as refused:
        engine.parse_definition(bpmn_xml=model)

    assert refused.value.element_id == "ErrorEventDefinition_no_record" and "error code" in refused.value.detail
