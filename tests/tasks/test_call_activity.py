"""Call activities through the services: the called definition runs as a child process instance linked to its caller,
with its variables mapped in and out; pinned versions; refused at deploy when missing, an incident when gone at run;
cancelling the caller cancels the child."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import InvalidInput
from queues.models import WorkflowQueue
from tasks.bpmn import engine
from tasks.bpmn.workflows import (
    definition_deploy,
    process_cancel,
    process_fire_due_timers,
    process_incident_retry,
    process_start,
)
from tasks.models import ProcessIncident, ProcessInstance, WorkflowDefinition, WorkflowTask
from tasks.services import task_claim, task_complete, task_insert
from tests.tasks.engine.documents import bpmn_document, linear_process, script_task

from .engine.documents import CALL_FILE, CALLED_FILE

pytestmark = pytest.mark.django_db


def work(user, task, variables=None):
    task_claim(user=user, task_id=task.pk)
    task_complete(user=user, task_id=task.pk, variables=variables or {})


def open_task(**filters):
    return WorkflowTask.objects.get(status__in=["OPEN", "CLAIMED"], **filters)


def start_caller(supervisor, *, caller_xml=None):
    definition_deploy(user=supervisor, bpmn_xml=caller_xml or CALL_FILE.read_text())
    return process_start(user=supervisor, process_key="call_review", business_key="CALL-1", variables={"amount": 900})


def test_the_called_process_runs_as_a_child_instance_and_its_caller_goes_on_when_it_ends(
    supervisor_sam, legal_reviewer_carol, caseworker_alice
):
    definition_deploy(user=supervisor_sam, bpmn_xml=CALLED_FILE.read_text())
    caller = start_caller(supervisor_sam)

    child = ProcessInstance.objects.get(parent_instance=caller)
    assert (child.definition.process_key, child.business_key, child.status) == ("called_review", "CALL-1", "RUNNING")
    assert child.variables == {"claim_amount": 900}  # only what camunda:in maps
    review = open_task(process_instance=child)
    assert (review.task_definition_key, review.queue_id) == ("review_claim", "legal-review")
    assert not WorkflowTask.objects.filter(process_instance=caller).exists()

    work(legal_reviewer_carol, review, {"verdict": "pay"})

    child.refresh_from_db()
    caller.refresh_from_db()
    assert child.status == "COMPLETED"
    assert caller.variables == {"amount": 900, "review_verdict": "pay"}
    decide = open_task(process_instance=caller)
    assert decide.task_definition_key == "decide"
    work(caseworker_alice, decide)
    caller.refresh_from_db()
    assert caller.status == "COMPLETED"


def test_a_pinned_version_runs_that_version_and_latest_runs_the_newest(supervisor_sam):
    definition_deploy(user=supervisor_sam, bpmn_xml=CALLED_FILE.read_text())
    definition_deploy(
        user=supervisor_sam, bpmn_xml=CALLED_FILE.read_text().replace('name="Review claim"', 'name="Review claim v2"')
    )
    pinned = CALL_FILE.read_text().replace(
        'calledElement="called_review"',
        'calledElement="called_review" camunda:calledElementBinding="version" camunda:calledElementVersion="1"',
    )
    first = start_caller(supervisor_sam, caller_xml=pinned)
    assert open_task(process_instance__parent_instance=first).name == "Review claim"
    latest = start_caller(supervisor_sam)
    assert open_task(process_instance__parent_instance=latest).name == "Review claim v2"


def test_a_caller_of_a_process_not_deployed_is_refused_at_deploy_naming_it(supervisor_sam):
    with pytest.raises(InvalidInput, match="run_review calls called_review, which is not deployed") as raised:
        definition_deploy(user=supervisor_sam, bpmn_xml=CALL_FILE.read_text())
    assert raised.value.code == "unknown_called_process"


def test_a_called_process_gone_at_run_is_an_incident_and_its_retry_starts_it(supervisor_sam):
    definition_deploy(user=supervisor_sam, bpmn_xml=CALLED_FILE.read_text())
    definition_deploy(user=supervisor_sam, bpmn_xml=CALL_FILE.read_text())
    WorkflowDefinition.objects.filter(process_key="called_review").update(is_active=False)

    caller = process_start(user=supervisor_sam, process_key="call_review", business_key="C-2", variables={})

    incident = ProcessIncident.objects.get(process_instance=caller, resolved_at__isnull=True)
    assert incident.element_id == "run_review"
    assert "called_review is not deployed" in incident.message
    assert not ProcessInstance.objects.filter(parent_instance=caller).exists()
    WorkflowDefinition.objects.filter(process_key="called_review").update(is_active=True)
    incident = retry(supervisor_sam, incident)
    assert incident.resolved_at is not None
    assert ProcessInstance.objects.filter(parent_instance=caller, status="RUNNING").count() == 1


def give_a_supervised_task(instance):
    """Supervisors act on instances with a task in a queue they supervise; a caller waiting in its call activity
    has none of its own."""
    task_insert(queue=WorkflowQueue.objects.get(queue_name="triage"), name="Follow up", process_instance=instance)


def retry(user, incident):
    give_a_supervised_task(incident.process_instance)
    return process_incident_retry(user=user, incident_id=incident.pk)


def test_cancelling_the_caller_cancels_the_child_and_its_tasks(supervisor_sam):
    definition_deploy(user=supervisor_sam, bpmn_xml=CALLED_FILE.read_text())
    caller = start_caller(supervisor_sam)
    child = ProcessInstance.objects.get(parent_instance=caller)
    give_a_supervised_task(caller)

    process_cancel(user=supervisor_sam, process_instance_id=caller.pk)

    child.refresh_from_db()
    assert child.status == "CANCELLED"
    assert WorkflowTask.objects.get(process_instance=child).status == "CANCELLED"


def test_a_call_activity_without_a_called_element_is_refused_with_its_id_and_line():
    document = bpmn_document(linear_process('    <bpmn:callActivity id="call"/>', node_ids=["call"]))
    with pytest.raises(engine.BpmnError, match="calledElement") as raised:
        engine.parse_definition(bpmn_xml=document)
    assert (raised.value.element_id, raised.value.line) == ("call", 5)


def test_an_expression_mapping_is_refused():
    document = bpmn_document(
        linear_process(
            '    <bpmn:callActivity id="call" calledElement="x"><bpmn:extensionElements>'
            '<camunda:in sourceExpression="${a}" target="b"/></bpmn:extensionElements></bpmn:callActivity>',
            node_ids=["call"],
        )
    )
    with pytest.raises(engine.BpmnError, match="expression") as raised:
        engine.parse_definition(bpmn_xml=document)
    assert raised.value.element_id == "call"


def test_a_called_process_that_ends_at_once_returns_its_variables_to_the_caller_at_once(supervisor_sam):
    child = bpmn_document(linear_process(script_task("double", "doubled = amount * 2"), node_ids=["double"]))
    definition_deploy(user=supervisor_sam, bpmn_xml=child)
    caller = CALL_FILE.read_text().replace('calledElement="called_review"', 'calledElement="fixture"')
    caller = caller.replace(
        '<camunda:in source="amount" target="claim_amount" />', '<camunda:in variables="all" />'
    ).replace('<camunda:out source="verdict" target="review_verdict" />', '<camunda:out variables="all" />')

    instance = start_caller(supervisor_sam, caller_xml=caller)

    instance.refresh_from_db()
    assert ProcessInstance.objects.get(parent_instance=instance).status == "COMPLETED"
    assert instance.variables == {"amount": 900, "doubled": 1800}
    assert open_task(process_instance=instance).task_definition_key == "decide"


def test_a_call_activity_an_interrupting_timer_closes_cancels_its_child(supervisor_sam):
    definition_deploy(user=supervisor_sam, bpmn_xml=CALLED_FILE.read_text())
    caller = CALL_FILE.read_text().replace(
        '    <bpmn:endEvent id="Event_end">',
        '    <bpmn:boundaryEvent id="too_slow" attachedToRef="run_review">\n'
        "      <bpmn:outgoing>Flow_late</bpmn:outgoing>\n"
        '      <bpmn:timerEventDefinition id="timer_late"><bpmn:timeDuration>PT1H</bpmn:timeDuration>'
        "</bpmn:timerEventDefinition>\n    </bpmn:boundaryEvent>\n"
        '    <bpmn:endEvent id="Event_late"><bpmn:incoming>Flow_late</bpmn:incoming></bpmn:endEvent>\n'
        '    <bpmn:sequenceFlow id="Flow_late" sourceRef="too_slow" targetRef="Event_late" />\n'
        '    <bpmn:endEvent id="Event_end">',
    )
    instance = start_caller(supervisor_sam, caller_xml=caller)
    child = ProcessInstance.objects.get(parent_instance=instance)

    assert process_fire_due_timers(now=timezone.now() + timedelta(hours=2)) == 1

    instance.refresh_from_db()
    child.refresh_from_db()
    assert (instance.status, child.status) == ("COMPLETED", "CANCELLED")
    assert WorkflowTask.objects.get(process_instance=child).status == "CANCELLED"
