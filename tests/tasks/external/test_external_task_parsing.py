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
