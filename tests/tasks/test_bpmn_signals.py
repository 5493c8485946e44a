"""BPMN signals through POST /api/workflow/signals: an intermediate signal catch event and an interrupting boundary
signal event (Camunda Modeler files), broadcast to every waiting instance the sender may act on, and two
broadcasts at once on PostgreSQL."""

import functools
import threading
from pathlib import Path

import pytest
from django.db import connections

from entitlements.models import User
from tasks import services
from tasks.bpmn import messages, workflows
from tasks.models import ProcessInstance, TaskStatus, WorkflowTask

MODELS = Path(__file__).resolve().parent / "engine" / "signals"


def deploy(supervisor, name: str):
    return workflows.definition_deploy(user=supervisor, bpmn_xml=(MODELS / f"{name}.bpmn").read_text())


def active(instance) -> list[str]:
    return sorted(
        WorkflowTask.objects.filter(
            process_instance=instance, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        ).values_list("task_definition_key", flat=True)
    )


def waiting_for_go_ahead(supervisor, alice, business_key: str) -> ProcessInstance:
    instance = workflows.process_start(user=supervisor, process_key="await_go_ahead", business_key=business_key)
    task = WorkflowTask.objects.get(process_instance=instance, task_definition_key="prepare")
    services.task_claim(user=alice, task_id=task.pk)
    services.task_complete(user=alice, task_id=task.pk, variables={})
    instance.refresh_from_db()
    assert instance.waiting_signals == ["go_ahead"] and active(instance) == []
    return instance


def broadcast(client, **body):
    return client.post("/api/workflow/signals", body, format="json")


@pytest.mark.django_db
def test_an_intermediate_signal_catch_event_in_every_waiting_instance_catches_the_broadcast(
    api_as, supervisor_sam, caseworker_alice
):
    deploy(supervisor_sam, "signal_catch")
    first = waiting_for_go_ahead(supervisor_sam, caseworker_alice, "G-1")
    second = waiting_for_go_ahead(supervisor_sam, caseworker_alice, "G-2")
    not_yet = workflows.process_start(user=supervisor_sam, process_key="await_go_ahead", business_key="G-3")
    response = broadcast(api_as(caseworker_alice), signal_name="go_ahead", variables={"approved_by": "board"})
    assert response.status_code == 200, response.content
    assert response.json() == {"process_instances": [first.pk, second.pk]}
    for instance in (first, second):
        instance.refresh_from_db()
        assert active(instance) == ["proceed"] and instance.variables["approved_by"] == "board"
        assert instance.waiting_signals == []
    assert active(not_yet) == ["prepare"]  # not waiting yet: a signal is not kept for later
    assert broadcast(api_as(caseworker_alice), signal_name="go_ahead").json() == {"process_instances": []}


@pytest.mark.django_db
def test_an_interrupting_boundary_signal_event_closes_its_task(api_as, supervisor_sam, caseworker_alice):
    deploy(supervisor_sam, "boundary_signal")
    instance = workflows.process_start(user=supervisor_sam, process_key="amnesty_investigation", business_key="A-1")
    investigate = WorkflowTask.objects.get(process_instance=instance, task_definition_key="investigate")
    response = broadcast(api_as(caseworker_alice), signal_name="amnesty_declared")
    assert response.status_code == 200 and response.json() == {"process_instances": [instance.pk]}
    assert WorkflowTask.objects.get(pk=investigate.pk).status == TaskStatus.ESCALATED
    assert active(instance) == ["close_under_amnesty"]


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["bob", "integration"])
def test_a_broadcast_reaches_only_instances_the_sender_works_or_supervises(
    api_as, supervisor_sam, caseworker_alice, username
):
    deploy(supervisor_sam, "signal_catch")
    instance = waiting_for_go_ahead(supervisor_sam, caseworker_alice, "G-1")
    response = broadcast(api_as(User.objects.get(username=username)), signal_name="go_ahead")
    assert response.status_code == 200 and response.json() == {"process_instances": []}
    instance.refresh_from_db()
    assert instance.waiting_signals == ["go_ahead"] and active(instance) == []


@pytest.mark.django_db
def test_a_bad_signal_body_is_400(api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    assert "signal_name" in broadcast(client).json()["fields"]
    assert broadcast(client, signal_name="x", variables=[1]).status_code == 400
    assert broadcast(api_as(caseworker_alice), signal_name="x" * 201).status_code == 400


def test_two_broadcasts_at_once_signal_each_instance_once(committed_db):
    supervisor, alice = User.objects.get(username="supervisor"), User.objects.get(username="alice")
    deploy(supervisor, "signal_catch")
    instances = [waiting_for_go_ahead(supervisor, alice, f"G-{n}") for n in range(3)]
    send = functools.partial(messages.signal_broadcast, user=alice, signal_name="go_ahead")
    barrier, results = threading.Barrier(2), []

    def run():
        try:
            barrier.wait()
            results.append(send())
        except Exception as exc:  # reported below
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(result, list) for result in results), results
    reached = sorted(instance.pk for result in results for instance in result)
    assert reached == sorted(instance.pk for instance in instances)  # each once, by one broadcast or the other
    for instance in instances:
        assert WorkflowTask.objects.filter(process_instance=instance, task_definition_key="proceed").count() == 1
