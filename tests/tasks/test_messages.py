"""Messages through POST /api/workflow/messages: each catching element (message start event, intermediate catch
event, receive task, interrupting boundary event) in a Camunda Modeler file, correlation and its refusals, who may
send, and the races (two messages, message vs cancel, message vs timer) on PostgreSQL."""

import functools
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from core.errors import NotFound
from entitlements.models import User
from queues.models import WorkflowQueue
from tasks import services
from tasks.bpmn import engine, messages, workflows
from tasks.models import ProcessInstance, ProcessStatus, TaskHistory, TaskStatus, WorkflowTask

MODELS = Path(__file__).resolve().parent / "engine" / "messages"


def model(name: str) -> str:
    return (MODELS / f"{name}.bpmn").read_text()


def deploy(supervisor, name: str, xml: str | None = None):
    return workflows.definition_deploy(user=supervisor, bpmn_xml=xml or model(name))


def active(instance) -> list[tuple[str, str]]:
    return sorted(
        WorkflowTask.objects.filter(
            process_instance=instance, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        ).values_list("task_definition_key", "status")
    )


def work_through(user, instance, key: str, variables=None) -> None:
    """Claim and complete the instance's open task `key` as `user`."""
    task = WorkflowTask.objects.get(process_instance=instance, task_definition_key=key, status=TaskStatus.OPEN)
    services.task_claim(user=user, task_id=task.pk)
    services.task_complete(user=user, task_id=task.pk, variables=variables or {})


def waiting_for_documents(supervisor, alice, business_key="DOC-1", variables=None):
    """An await_documents instance past its first task, waiting at its intermediate message catch event."""
    instance = workflows.process_start(
        user=supervisor, process_key="await_documents", business_key=business_key, variables=variables or {}
    )
    work_through(alice, instance, "request_documents")
    instance.refresh_from_db()
    assert instance.waiting_messages == ["documents_received"] and active(instance) == []
    return instance


@pytest.mark.django_db
def test_the_element_waiting_for_a_message_is_active_in_the_instances_diagram(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "message_catch")
    instance = waiting_for_documents(supervisor_sam, caseworker_alice)
    states = engine.element_states(
        spec=workflows.definition_runtime(instance.definition_id).spec, state=instance.engine_state
    )
    assert states["documents_received"] == engine.ELEMENT_ACTIVE
    assert states["request_documents"] == engine.ELEMENT_COMPLETED


def send(client, **body):
    return client.post("/api/workflow/messages", body, format="json")


# --- one test per catching element -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_message_start_event_starts_a_new_instance_with_the_messages_variables(
    api_as, supervisor_sam, caseworker_alice
):
    deploy(supervisor_sam, "message_start")
    response = send(
        api_as(caseworker_alice), message_name="payment_received", business_key="PAY-1", variables={"amount": 12}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["started"] is True
    assert body["process"]["process_key"] == "payment_intake" and body["process"]["business_key"] == "PAY-1"
    assert body["process"]["variables"] == {"amount": 12}
    instance = ProcessInstance.objects.get(pk=body["process"]["id"])
    assert active(instance) == [("review_payment", "OPEN")] and instance.started_by == caseworker_alice
    work_through(caseworker_alice, instance, "review_payment")
    assert ProcessInstance.objects.get(pk=instance.pk).status == ProcessStatus.COMPLETED


@pytest.mark.django_db
def test_an_intermediate_message_catch_event_waits_for_its_message_and_merges_its_variables(
    api_as, supervisor_sam, caseworker_alice
):
    deploy(supervisor_sam, "message_catch")
    instance = waiting_for_documents(supervisor_sam, caseworker_alice, variables={"kept": "yes"})
    response = send(
        api_as(caseworker_alice), message_name="documents_received", business_key="DOC-1", variables={"pages": 3}
    )
    assert response.status_code == 200, response.content
    assert response.json()["started"] is False and response.json()["process"]["id"] == instance.pk
    instance.refresh_from_db()
    assert instance.variables == {"kept": "yes", "pages": 3} and instance.waiting_messages == []
    assert active(instance) == [("review_documents", "OPEN")]
    work_through(caseworker_alice, instance, "review_documents")
    assert ProcessInstance.objects.get(pk=instance.pk).status == ProcessStatus.COMPLETED


@pytest.mark.django_db
def test_a_receive_task_waits_for_its_message(api_as, supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "receive_task")
    instance = workflows.process_start(user=supervisor_sam, process_key="await_reply", business_key="R-1")
    assert active(instance) == [("send_request", "OPEN")]
    early = send(api_as(caseworker_alice), message_name="reply_received", business_key="R-1")
    assert early.status_code == 404  # not waiting yet: the request has not gone out
    work_through(caseworker_alice, instance, "send_request")
    response = send(api_as(caseworker_alice), message_name="reply_received", variables={"answer": "agreed"})
    assert response.status_code == 200, response.content
    instance.refresh_from_db()
    assert active(instance) == [("handle_reply", "OPEN")] and instance.variables["answer"] == "agreed"


@pytest.mark.django_db
def test_an_interrupting_boundary_message_event_closes_its_task_and_gives_the_load_back(
    api_as, supervisor_sam, caseworker_alice
):
    deploy(supervisor_sam, "boundary_message")
    instance = workflows.process_start(
        user=supervisor_sam, process_key="withdrawable_investigation", business_key="W-1"
    )
    investigate = WorkflowTask.objects.get(process_instance=instance, task_definition_key="investigate")
    services.task_claim(user=caseworker_alice, task_id=investigate.pk)
    load = WorkflowQueue.objects.get(queue_name="triage").current_load
    response = send(
        api_as(caseworker_alice), message_name="complaint_withdrawn", business_key="W-1", variables={"by": "letter"}
    )
    assert response.status_code == 200, response.content
    # Closed by the workflow, which moved on elsewhere: ESCALATED, as a task an interrupting timer closes is.
    assert WorkflowTask.objects.get(pk=investigate.pk).status == TaskStatus.ESCALATED
    assert active(instance) == [("close_withdrawn", "OPEN")]
    assert WorkflowQueue.objects.get(queue_name="triage").current_load == load - 1
    assert TaskHistory.objects.filter(task=investigate, event_type="ESCALATED").exists()


# --- correlation -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_message_nothing_waits_for_is_404_naming_it(api_as, supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "message_catch")
    waiting_for_documents(supervisor_sam, caseworker_alice)
    response = send(api_as(caseworker_alice), message_name="documents_received", business_key="NO-SUCH-KEY")
    assert response.status_code == 404
    assert response.json()["code"] == "message_not_correlated"
    assert "documents_received" in response.json()["detail"] and "NO-SUCH-KEY" in response.json()["detail"]
    assert send(api_as(caseworker_alice), message_name="never_modelled").status_code == 404


@pytest.mark.django_db
def test_several_waiting_instances_are_409_until_a_business_key_or_correlation_keys_single_one_out(
    api_as, supervisor_sam, caseworker_alice
):
    deploy(supervisor_sam, "message_catch")
    first = waiting_for_documents(supervisor_sam, caseworker_alice, "DOC-A", {"case_ref": "A"})
    second = waiting_for_documents(supervisor_sam, caseworker_alice, "DOC-B", {"case_ref": "B"})
    alice = api_as(caseworker_alice)
    ambiguous = send(alice, message_name="documents_received")
    assert ambiguous.status_code == 409 and ambiguous.json()["code"] == "message_ambiguous"
    assert "documents_received" in ambiguous.json()["detail"]
    assert active(first) == [] and active(second) == []

    by_variables = send(alice, message_name="documents_received", correlation_keys={"case_ref": "B"})
    assert by_variables.status_code == 200 and by_variables.json()["process"]["id"] == second.pk
    by_key = send(alice, message_name="documents_received", business_key="DOC-A")
    assert by_key.status_code == 200 and by_key.json()["process"]["id"] == first.pk


@pytest.mark.django_db
def test_bad_message_bodies_are_400_naming_the_field(api_as, caseworker_alice):
    alice = api_as(caseworker_alice)
    assert send(alice).json()["fields"].keys() >= {"message_name"}
    assert send(alice, message_name="x", correlation_keys=[1]).status_code == 400
    assert alice.post("/api/workflow/messages", [1], format="json").status_code == 400


@pytest.mark.django_db
def test_a_message_start_needs_a_business_key(api_as, supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "message_start")
    response = send(api_as(caseworker_alice), message_name="payment_received")
    assert response.status_code == 400 and "business_key" in response.json()["fields"]


@pytest.mark.django_db
def test_a_suspended_instance_catches_no_message_until_resumed(api_as, supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "message_catch")
    instance = waiting_for_documents(supervisor_sam, caseworker_alice)
    workflows.process_suspend(user=supervisor_sam, process_instance_id=instance.pk)
    alice = api_as(caseworker_alice)
    assert send(alice, message_name="documents_received", business_key="DOC-1").status_code == 404
    workflows.process_resume(user=supervisor_sam, process_instance_id=instance.pk)
    assert send(alice, message_name="documents_received", business_key="DOC-1").status_code == 200


# --- who may send ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["bob", "integration"])
def test_a_sender_without_work_or_supervision_in_the_instances_queues_reaches_nothing(
    api_as, supervisor_sam, caseworker_alice, username
):
    # bob works fraud-investigation, the integration account intake: the instance's tasks are in triage.
    deploy(supervisor_sam, "message_catch")
    instance = waiting_for_documents(supervisor_sam, caseworker_alice)
    response = send(api_as(User.objects.get(username=username)), message_name="documents_received")
    assert response.status_code == 404 and response.json()["code"] == "message_not_correlated"
    instance.refresh_from_db()
    assert instance.waiting_messages == ["documents_received"] and active(instance) == []


@pytest.mark.django_db
def test_an_integration_account_sends_on_behalf_of_a_caseworker_and_is_recorded(
    api_as, supervisor_sam, caseworker_alice, integration_account
):
    deploy(supervisor_sam, "message_catch")
    instance = waiting_for_documents(supervisor_sam, caseworker_alice)
    response = api_as(integration_account).post(
        "/api/workflow/messages", {"message_name": "documents_received"}, format="json", HTTP_X_ON_BEHALF_OF="alice"
    )
    assert response.status_code == 200, response.content
    review = WorkflowTask.objects.get(process_instance=instance, task_definition_key="review_documents")
    created = TaskHistory.objects.get(task=review, event_type="CREATED")
    assert (created.actor, created.via_account) == (caseworker_alice, integration_account)


@pytest.mark.django_db
def test_starting_by_message_needs_the_right_to_start_the_process(api_as, supervisor_sam, fraud_investigator_bob):
    deploy(supervisor_sam, "message_start")
    response = send(api_as(fraud_investigator_bob), message_name="payment_received", business_key="PAY-9")
    assert response.status_code == 403 and response.json()["code"] == "start_refused"
    assert not ProcessInstance.objects.filter(business_key="PAY-9").exists()


# --- deploying ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_message_event_without_a_known_message_is_refused_naming_the_element_and_line(api_as, supervisor_sam):
    xml = model("message_catch").replace('messageRef="Message_documents"', 'messageRef="Message_nowhere"')
    response = api_as(supervisor_sam).post("/api/workflow/definitions/", {"bpmn_xml": xml}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_bpmn"
    detail = response.json()["detail"]
    assert "Message_nowhere" in detail and "element MessageEventDefinition_docs" in detail and "line 14" in detail


@pytest.mark.django_db
def test_other_catch_events_are_still_refused(api_as, supervisor_sam):
    xml = model("message_catch").replace(
        '<bpmn:messageEventDefinition id="MessageEventDefinition_docs" messageRef="Message_documents" />',
        '<bpmn:conditionalEventDefinition id="ConditionalEventDefinition_docs"><bpmn:condition>x</bpmn:condition>'
        "</bpmn:conditionalEventDefinition>",
    )
    response = api_as(supervisor_sam).post("/api/workflow/definitions/", {"bpmn_xml": xml}, format="json")
    assert response.status_code == 400
    assert "<conditionalEventDefinition> is not supported" in response.json()["detail"]


# --- races on PostgreSQL -----------------------------------------------------------------------------------------


def race(*calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # reported to the test
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def users():
    return User.objects.get(username="supervisor"), User.objects.get(username="alice")


def test_two_messages_for_one_waiting_instance_deliver_once(committed_db):
    supervisor, alice = users()
    deploy(supervisor, "message_catch")
    instance = waiting_for_documents(supervisor, alice)
    send_one = functools.partial(
        messages.message_correlate, user=alice, message_name="documents_received", business_key="DOC-1"
    )
    results = race(send_one, send_one)
    delivered = [r for r in results if isinstance(r, messages.MessageOutcome)]
    refused = [r for r in results if isinstance(r, NotFound)]
    assert len(delivered) == 1 and len(refused) == 1, results
    assert refused[0].code == "message_not_correlated"
    assert WorkflowTask.objects.filter(process_instance=instance, task_definition_key="review_documents").count() == 1


def test_a_message_racing_a_cancel_has_exactly_one_outcome(committed_db):
    supervisor, alice = users()
    deploy(supervisor, "message_catch")
    instance = waiting_for_documents(supervisor, alice)
    delivered, cancelled = race(
        functools.partial(messages.message_correlate, user=alice, message_name="documents_received"),
        functools.partial(workflows.process_cancel, user=supervisor, process_instance_id=instance.pk),
    )
    assert isinstance(cancelled, ProcessInstance), cancelled
    review = WorkflowTask.objects.filter(process_instance=instance, task_definition_key="review_documents")
    if isinstance(delivered, messages.MessageOutcome):  # delivered first, then cancelled: its new task closed
        assert list(review.values_list("status", flat=True)) == [TaskStatus.CANCELLED]
    else:  # cancelled first: nothing waits any more
        assert isinstance(delivered, NotFound), delivered
        assert not review.exists()
    assert ProcessInstance.objects.get(pk=instance.pk).status == ProcessStatus.CANCELLED


TIMER_BOUNDARY = (
    '<bpmn:boundaryEvent id="after_a_week" attachedToRef="investigate"><bpmn:outgoing>Flow_chase</bpmn:outgoing>'
    "<bpmn:timerEventDefinition><bpmn:timeDuration>P7D</bpmn:timeDuration></bpmn:timerEventDefinition>"
    "</bpmn:boundaryEvent>"
    '<bpmn:userTask id="chase" name="Chase" camunda:candidateGroups="triage"><bpmn:incoming>Flow_chase</bpmn:incoming>'
    "</bpmn:userTask>"
    '<bpmn:sequenceFlow id="Flow_chase" sourceRef="after_a_week" targetRef="chase" />'
)


def test_a_message_racing_a_due_timer_on_the_same_task_has_exactly_one_outcome(committed_db):
    supervisor, alice = users()
    xml = model("boundary_message").replace("  </bpmn:process>", f"    {TIMER_BOUNDARY}\n  </bpmn:process>")
    deploy(supervisor, "boundary_message", xml)
    instance = workflows.process_start(user=supervisor, process_key="withdrawable_investigation", business_key="W-9")
    later = timezone.now() + timedelta(days=8)
    delivered, fired = race(
        functools.partial(messages.message_correlate, user=alice, message_name="complaint_withdrawn"),
        functools.partial(workflows.process_fire_due_timers, now=later),
    )
    outcome = [key for key, _ in active(instance)]
    if isinstance(delivered, messages.MessageOutcome):
        assert outcome == ["close_withdrawn"] and fired == 0, (delivered, fired)
    else:
        assert isinstance(delivered, NotFound) and fired == 1, (delivered, fired)
        assert outcome == ["chase"]
    investigate = WorkflowTask.objects.get(process_instance=instance, task_definition_key="investigate")
    assert investigate.status in (TaskStatus.CANCELLED, TaskStatus.ESCALATED)
    assert TaskHistory.objects.filter(task=investigate, event_type__in=["CANCELLED", "ESCALATED"]).count() == 1
