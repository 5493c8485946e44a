"""BPMN event subprocesses (Camunda Modeler files) run through the services: started by an error (interrupting),
a message (non-interrupting and interrupting) and a timer (non-interrupting and interrupting), their user tasks in
the queues like any other; and what deploy refuses."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tasks import services
from tasks.bpmn import engine, messages, workflows
from tasks.models import ProcessInstance, ProcessStatus, TaskStatus, WorkflowTask

MODELS = Path(__file__).resolve().parent / "engine" / "event_subprocesses"
pytestmark = pytest.mark.django_db


def deploy(supervisor, name: str, *, interrupting: bool | None = None):
    xml = (MODELS / f"{name}.bpmn").read_text()
    if interrupting:
        xml = xml.replace(' isInterrupting="false"', "")
    return workflows.definition_deploy(user=supervisor, bpmn_xml=xml)


def active(instance) -> list[str]:
    return sorted(
        WorkflowTask.objects.filter(
            process_instance=instance, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        ).values_list("task_definition_key", flat=True)
    )


def complete(user, instance, key: str, **variables) -> None:
    task = WorkflowTask.objects.filter(process_instance=instance, task_definition_key=key, status=TaskStatus.OPEN)[0]
    services.task_claim(user=user, task_id=task.pk)
    services.task_complete(user=user, task_id=task.pk, variables=variables)


def refreshed(instance) -> ProcessInstance:
    return ProcessInstance.objects.get(pk=instance.pk)


# --- error start event: interrupting --------------------------------------------------------------------------


def test_an_error_thrown_in_the_process_starts_its_error_event_subprocess(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "error_event_subprocess")
    instance = workflows.process_start(
        user=supervisor_sam, process_key="payment_with_error_handler", business_key="P-1"
    )

    complete(caseworker_alice, instance, "verify", valid=False)

    assert refreshed(instance).status == ProcessStatus.RUNNING
    assert active(instance) == ["handle_invalid"]
    complete(caseworker_alice, instance, "handle_invalid")
    instance = refreshed(instance)
    assert instance.status == ProcessStatus.COMPLETED and instance.variables["valid"] is False


def test_without_the_error_the_event_subprocess_never_starts(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "error_event_subprocess")
    instance = workflows.process_start(
        user=supervisor_sam, process_key="payment_with_error_handler", business_key="P-2"
    )

    complete(caseworker_alice, instance, "verify", valid=True)
    assert active(instance) == ["pay"]
    complete(caseworker_alice, instance, "pay")

    assert refreshed(instance).status == ProcessStatus.COMPLETED
    assert not WorkflowTask.objects.filter(process_instance=instance, task_definition_key="handle_invalid").exists()


# --- message start event --------------------------------------------------------------------------------------


def test_a_message_starts_a_non_interrupting_event_subprocess_beside_the_flow_each_time(
    supervisor_sam, caseworker_alice
):
    deploy(supervisor_sam, "message_event_subprocess")
    instance = workflows.process_start(user=supervisor_sam, process_key="case_with_updates", business_key="U-1")
    assert refreshed(instance).waiting_messages == ["case_updated"]

    for note in ("new address", "new witness"):
        outcome = messages.message_correlate(
            user=caseworker_alice, message_name="case_updated", business_key="U-1", variables={"note": note}
        )
        assert outcome.instance.pk == instance.pk and not outcome.started

    assert active(instance) == ["investigate", "review_update", "review_update"]
    complete(caseworker_alice, instance, "investigate")
    assert refreshed(instance).status == ProcessStatus.RUNNING  # the updates are still being reviewed
    complete(caseworker_alice, instance, "review_update")
    complete(caseworker_alice, instance, "review_update")
    instance = refreshed(instance)
    assert instance.status == ProcessStatus.COMPLETED and instance.waiting_messages == []


def test_a_message_starts_an_interrupting_event_subprocess_that_closes_the_flow(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "message_event_subprocess", interrupting=True)
    instance = workflows.process_start(user=supervisor_sam, process_key="case_with_updates", business_key="U-2")
    investigate = WorkflowTask.objects.get(process_instance=instance, task_definition_key="investigate")

    messages.message_correlate(
        user=caseworker_alice, message_name="case_updated", business_key="U-2", variables={"note": "withdrawn"}
    )

    assert active(instance) == ["review_update"]
    assert WorkflowTask.objects.get(pk=investigate.pk).status != TaskStatus.OPEN
    assert refreshed(instance).waiting_messages == []  # interrupted: it listens no more
    complete(caseworker_alice, instance, "review_update")
    instance = refreshed(instance)
    assert instance.status == ProcessStatus.COMPLETED and instance.variables["note"] == "withdrawn"


def test_a_new_instance_after_an_interrupting_message_starts_with_its_own_flow(supervisor_sam, caseworker_alice):
    # SpiffWorkflow connects an event subprocess into the process spec it starts; instances must not share that.
    deploy(supervisor_sam, "message_event_subprocess", interrupting=True)
    first = workflows.process_start(user=supervisor_sam, process_key="case_with_updates", business_key="U-3")
    messages.message_correlate(user=caseworker_alice, message_name="case_updated", business_key="U-3")

    second = workflows.process_start(user=supervisor_sam, process_key="case_with_updates", business_key="U-4")

    assert active(first) == ["review_update"]
    assert active(second) == ["investigate"]


def test_a_broadcast_signal_starts_an_event_subprocess_waiting_for_it(api_as, supervisor_sam, caseworker_alice):
    xml = (
        (MODELS / "message_event_subprocess.bpmn")
        .read_text()
        .replace(
            '<bpmn:messageEventDefinition id="MessageEventDefinition_update" messageRef="Message_update" />',
            '<bpmn:signalEventDefinition id="SignalEventDefinition_update" signalRef="Signal_update" />',
        )
        .replace(
            '<bpmn:message id="Message_update" name="case_updated" />',
            '<bpmn:signal id="Signal_update" name="case_updated" />',
        )
    )
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=xml)
    instance = workflows.process_start(user=supervisor_sam, process_key="case_with_updates", business_key="S-1")
    assert refreshed(instance).waiting_signals == ["case_updated"]

    response = api_as(caseworker_alice).post("/api/workflow/signals", {"signal_name": "case_updated"}, format="json")

    assert response.status_code == 200 and response.json() == {"process_instances": [instance.pk]}
    assert active(instance) == ["investigate", "review_update"]


# --- escalation start event -----------------------------------------------------------------------------------


def test_an_escalation_starts_a_non_interrupting_event_subprocess_beside_the_flow(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "escalation_event_subprocess")
    instance = workflows.process_start(
        user=supervisor_sam, process_key="payment_with_escalation_handler", business_key="E-1"
    )

    complete(caseworker_alice, instance, "verify", doubtful=True)

    assert active(instance) == ["notify_supervisor", "pay"]
    complete(caseworker_alice, instance, "pay")
    assert refreshed(instance).status == ProcessStatus.RUNNING
    complete(caseworker_alice, instance, "notify_supervisor")
    assert refreshed(instance).status == ProcessStatus.COMPLETED


# --- timer start event ----------------------------------------------------------------------------------------


def test_a_due_timer_starts_a_non_interrupting_event_subprocess_beside_the_flow(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "timer_event_subprocess")
    instance = workflows.process_start(user=supervisor_sam, process_key="case_with_reminder", business_key="T-1")
    due = refreshed(instance).next_timer_due_at
    assert due is not None and due - timezone.now() > timedelta(hours=47)

    workflows.process_fire_due_timers(now=timezone.now() + timedelta(hours=49))

    assert active(instance) == ["chase", "investigate"]
    complete(caseworker_alice, instance, "chase")
    complete(caseworker_alice, instance, "investigate")
    assert refreshed(instance).status == ProcessStatus.COMPLETED


def test_a_process_done_before_its_timer_ends_without_waiting_for_it(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "timer_event_subprocess")
    instance = workflows.process_start(user=supervisor_sam, process_key="case_with_reminder", business_key="T-2")

    complete(caseworker_alice, instance, "investigate")

    instance = refreshed(instance)
    assert instance.status == ProcessStatus.COMPLETED and instance.next_timer_due_at is None


def test_a_due_timer_starts_an_interrupting_event_subprocess_that_closes_the_flow(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "timer_event_subprocess", interrupting=True)
    instance = workflows.process_start(user=supervisor_sam, process_key="case_with_reminder", business_key="T-3")

    workflows.process_fire_due_timers(now=timezone.now() + timedelta(hours=49))

    assert active(instance) == ["chase"]
    complete(caseworker_alice, instance, "chase")
    assert refreshed(instance).status == ProcessStatus.COMPLETED


# --- refused --------------------------------------------------------------------------------------------------


def refusal(xml: str) -> engine.BpmnError:
    with pytest.raises(engine.BpmnError) as refused:
        engine.parse_definition(bpmn_xml=xml)
    return refused.value


def test_an_event_subprocess_inside_a_subprocess_is_refused_naming_it_and_its_line():
    xml = (MODELS / "message_event_subprocess.bpmn").read_text()
    # Wrap the event subprocess in an embedded subprocess.
    xml = xml.replace(
        '<bpmn:subProcess id="update_handler"', '<bpmn:subProcess id="outer">\n<bpmn:subProcess id="update_handler"'
    ).replace("</bpmn:subProcess>\n  </bpmn:process>", "</bpmn:subProcess>\n</bpmn:subProcess>\n  </bpmn:process>")

    refused = refusal(xml)

    assert refused.element_id == "update_handler" and refused.line == 17
    assert "in the process itself" in refused.detail


def test_a_non_interrupting_error_start_event_is_refused():
    xml = (
        (MODELS / "error_event_subprocess.bpmn")
        .read_text()
        .replace(
            '<bpmn:startEvent id="error_caught" name="Invalid payment">',
            '<bpmn:startEvent id="error_caught" name="Invalid payment" isInterrupting="false">',
        )
    )

    refused = refusal(xml)

    assert refused.element_id == "error_caught" and "always interrupts" in refused.detail


def test_an_event_subprocess_start_event_without_an_event_is_refused():
    xml = (MODELS / "timer_event_subprocess.bpmn").read_text()
    start = xml.index('<bpmn:timerEventDefinition id="TimerEventDefinition_two_days">')
    end = xml.index("</bpmn:timerEventDefinition>") + len("</bpmn:timerEventDefinition>")
    xml = xml[:start] + xml[end:]

    refused = refusal(xml)

    assert refused.element_id == "two_days_passed" and "exactly one event definition" in refused.detail
