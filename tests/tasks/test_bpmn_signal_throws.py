"""BPMN signal throw events and signal start events (Camunda Modeler files), run through the services: an
intermediate signal throw event and a signal end event broadcast to every other waiting instance, as
POST /api/workflow/signals does, and a signal starts every latest process whose start event waits for it."""

import threading
from pathlib import Path

import pytest
from django.db import connections

from entitlements.models import User
from tasks import services
from tasks.bpmn import engine, workflows
from tasks.models import ProcessInstance, ProcessStatus, TaskStatus, WorkflowTask

MODELS = Path(__file__).resolve().parent / "engine" / "signals"


def deploy(supervisor, *names: str) -> None:
    for name in names:
        workflows.definition_deploy(user=supervisor, bpmn_xml=(MODELS / f"{name}.bpmn").read_text())


def active(instance) -> list[str]:
    return sorted(
        WorkflowTask.objects.filter(
            process_instance=instance, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        ).values_list("task_definition_key", flat=True)
    )


def complete(user, instance, key: str) -> None:
    task = WorkflowTask.objects.get(process_instance=instance, task_definition_key=key, status=TaskStatus.OPEN)
    services.task_claim(user=user, task_id=task.pk)
    services.task_complete(user=user, task_id=task.pk, variables={})


def waiting_for_go_ahead(supervisor, alice, business_key: str) -> ProcessInstance:
    instance = workflows.process_start(user=supervisor, process_key="await_go_ahead", business_key=business_key)
    complete(alice, instance, "prepare")
    instance.refresh_from_db()
    assert instance.waiting_signals == ["go_ahead"]
    return instance


@pytest.mark.django_db
def test_an_intermediate_signal_throw_event_wakes_another_waiting_instance(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "boundary_signal", "signal_throw")
    investigation = workflows.process_start(
        user=supervisor_sam, process_key="amnesty_investigation", business_key="A-1"
    )
    announcer = workflows.process_start(user=supervisor_sam, process_key="announce_amnesty", business_key="AN-1")
    assert active(investigation) == ["investigate"]

    complete(caseworker_alice, announcer, "decide")

    assert active(announcer) == ["inform"]  # the thrower goes on past its throw event
    investigation.refresh_from_db()
    assert active(investigation) == ["close_under_amnesty"]  # its boundary signal event caught the throw
    assert WorkflowTask.objects.get(process_instance=investigation, task_definition_key="investigate").status == (
        TaskStatus.ESCALATED
    )


@pytest.mark.django_db
def test_a_signal_end_event_wakes_every_waiting_instance_and_ends_its_own(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "signal_catch", "signal_end")
    waiting = [waiting_for_go_ahead(supervisor_sam, caseworker_alice, f"G-{n}") for n in range(2)]
    not_yet = workflows.process_start(user=supervisor_sam, process_key="await_go_ahead", business_key="G-9")
    thrower = workflows.process_start(user=supervisor_sam, process_key="give_go_ahead", business_key="GA-1")

    complete(caseworker_alice, thrower, "approve")

    thrower.refresh_from_db()
    assert thrower.status == ProcessStatus.COMPLETED
    for instance in waiting:
        instance.refresh_from_db()
        assert active(instance) == ["proceed"] and instance.waiting_signals == []
    assert active(not_yet) == ["prepare"]  # not waiting yet: a signal is not kept for later


@pytest.mark.django_db
def test_a_thrown_signal_starts_every_process_with_a_signal_start_event_for_it(supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "signal_end", "signal_start")
    thrower = workflows.process_start(user=supervisor_sam, process_key="give_go_ahead", business_key="GA-2")

    complete(caseworker_alice, thrower, "approve")

    (started,) = ProcessInstance.objects.filter(definition__process_key="follow_up_go_ahead")
    assert started.business_key == "GA-2"  # the thrower's
    assert active(started) == ["follow_up"]


@pytest.mark.django_db
def test_a_broadcast_from_the_api_starts_a_process_with_the_given_business_key(
    api_as, supervisor_sam, caseworker_alice
):
    deploy(supervisor_sam, "signal_start")

    response = api_as(caseworker_alice).post(
        "/api/workflow/signals", {"signal_name": "go_ahead", "business_key": "S-1"}, format="json"
    )

    assert response.status_code == 200, response.content
    (started,) = ProcessInstance.objects.filter(definition__process_key="follow_up_go_ahead")
    assert response.json() == {"process_instances": [started.pk]}
    assert started.business_key == "S-1" and active(started) == ["follow_up"]


@pytest.mark.django_db
def test_a_broadcast_starts_no_process_the_sender_may_not_start(api_as, supervisor_sam, integration_account):
    deploy(supervisor_sam, "signal_start")

    response = api_as(integration_account).post("/api/workflow/signals", {"signal_name": "go_ahead"}, format="json")

    assert response.status_code == 200 and response.json() == {"process_instances": []}
    assert not ProcessInstance.objects.filter(definition__process_key="follow_up_go_ahead").exists()


@pytest.mark.django_db
def test_a_process_that_signals_itself_on_start_is_started_once_per_chain(supervisor_sam, caseworker_alice):
    # Started by go_ahead, it throws go_ahead at once: each start would start it again, without end.
    xml = (
        (MODELS / "signal_start.bpmn")
        .read_text()
        .replace(
            '<bpmn:sequenceFlow id="Flow_follow_up" sourceRef="go_ahead_heard" targetRef="follow_up" />',
            '<bpmn:sequenceFlow id="Flow_follow_up" sourceRef="go_ahead_heard" targetRef="pass_on" />\n'
            '    <bpmn:intermediateThrowEvent id="pass_on"><bpmn:incoming>Flow_follow_up</bpmn:incoming>'
            "<bpmn:outgoing>Flow_passed</bpmn:outgoing>"
            '<bpmn:signalEventDefinition id="SignalEventDefinition_pass" signalRef="Signal_go_ahead" />'
            "</bpmn:intermediateThrowEvent>\n"
            '    <bpmn:sequenceFlow id="Flow_passed" sourceRef="pass_on" targetRef="follow_up" />',
        )
    )
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=xml)
    deploy(supervisor_sam, "signal_end")
    thrower = workflows.process_start(user=supervisor_sam, process_key="give_go_ahead", business_key="GA-3")

    complete(caseworker_alice, thrower, "approve")

    (started,) = ProcessInstance.objects.filter(definition__process_key="follow_up_go_ahead")
    assert active(started) == ["follow_up"]


@pytest.mark.parametrize(
    ("old", "new", "message", "element_id"),
    [
        (
            '<bpmn:signalEventDefinition id="SignalEventDefinition_announce" signalRef="Signal_amnesty" />',
            '<bpmn:messageEventDefinition id="MessageEventDefinition_1" />',
            "<messageEventDefinition> is not supported",
            "MessageEventDefinition_1",
        ),
        (
            '<bpmn:signalEventDefinition id="SignalEventDefinition_announce" signalRef="Signal_amnesty" />',
            "",
            "must throw exactly one signal",
            "amnesty_announced",
        ),
        (
            'signalRef="Signal_amnesty" />',
            'signalRef="Signal_nothing" />',
            "signalRef 'Signal_nothing'",
            "SignalEventDefinition_announce",
        ),
    ],
)
def test_throw_events_other_than_a_signal_are_refused_naming_them(old, new, message, element_id):
    xml = (MODELS / "signal_throw.bpmn").read_text().replace(old, new, 1)

    with pytest.raises(engine.BpmnError) as refused:
        engine.parse_definition(bpmn_xml=xml)

    assert message in refused.value.detail
    assert refused.value.element_id == element_id and refused.value.line in (11, 14)


def test_two_instances_throwing_at_once_wake_each_waiting_instance_once(committed_db):
    supervisor, alice = User.objects.get(username="supervisor"), User.objects.get(username="alice")
    deploy(supervisor, "signal_catch", "signal_end")
    waiting = [waiting_for_go_ahead(supervisor, alice, f"G-{n}") for n in range(3)]
    approvals = []
    for n in range(2):
        thrower = workflows.process_start(user=supervisor, process_key="give_go_ahead", business_key=f"GA-{n}")
        task = WorkflowTask.objects.get(process_instance=thrower, task_definition_key="approve")
        services.task_claim(user=alice, task_id=task.pk)
        approvals.append(task.pk)
    barrier, results = threading.Barrier(2), []

    def approve(task_id):
        try:
            barrier.wait()
            services.task_complete(user=alice, task_id=task_id, variables={})
            results.append("done")
        except Exception as exc:  # reported below
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(task_id,)) for task_id in approvals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert results == ["done", "done"], results
    for instance in waiting:  # by one throw or the other, never both
        assert WorkflowTask.objects.filter(process_instance=instance, task_definition_key="proceed").count() == 1
    assert set(
        ProcessInstance.objects.filter(definition__process_key="give_go_ahead").values_list("status", flat=True)
    ) == {ProcessStatus.COMPLETED}
