"""Process instances on PostgreSQL: parallel joins under real concurrency, bad models, suspend and cancel."""

import threading

import pytest
from django.db import connections, transaction

from cases.services import case_open
from core.errors import Conflict
from entitlements.models import User
from tasks import services
from tasks.bpmn import workflows
from tasks.models import ProcessInstance, WorkflowTask
from tests.tasks.engine.documents import DEMO_FILE, PARALLEL_FILE, bpmn_document, linear_process


def start_parallel(supervisor):
    workflows.definition_deploy(user=supervisor, bpmn_xml=PARALLEL_FILE.read_text())
    return workflows.process_start(
        user=supervisor, process_key="parallel_review", business_key="P-1", variables={"join_count": 0}
    )


def test_two_users_completing_parallel_tasks_at_once_both_succeed_and_the_join_fires_once(committed_db):
    supervisor, bob, carol = (User.objects.get(username=n) for n in ("supervisor", "bob", "carol"))
    instance = start_parallel(supervisor)
    legal = WorkflowTask.objects.get(process_instance=instance, task_definition_key="legal_check")
    finance = WorkflowTask.objects.get(process_instance=instance, task_definition_key="finance_check")
    services.task_claim(user=carol, task_id=legal.pk)
    services.task_claim(user=bob, task_id=finance.pk)
    barrier = threading.Barrier(2)
    results = {}

    def complete(user, task):
        def run():
            barrier.wait()
            try:
                services.task_complete(user=user, task_id=task.pk, variables={})
                results[user.username] = "ok"
            except Exception as exc:  # reported below
                results[user.username] = repr(exc)
            finally:
                connections.close_all()

        return run

    threads = [threading.Thread(target=complete(carol, legal)), threading.Thread(target=complete(bob, finance))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == {"carol": "ok", "bob": "ok"}
    instance.refresh_from_db()
    assert instance.variables["join_count"] == 1
    decide = WorkflowTask.objects.filter(process_instance=instance, task_definition_key="decide")
    assert decide.count() == 1 and decide.get().queue_id == "triage"


def test_case_numbers_are_unique_when_cases_open_at_once(committed_db):
    supervisor, alice = User.objects.get(username="supervisor"), User.objects.get(username="alice")
    workflows.definition_deploy(user=supervisor, bpmn_xml=DEMO_FILE.read_text())
    numbers, barrier = [], threading.Barrier(6)

    def open_one():
        try:
            barrier.wait()
            case = case_open(
                user=alice,
                title="concurrent",
                allegations=[{"type": "FRAUD", "description": "x", "date": "2026-01-01"}],
            )
            numbers.append(case.case_number)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(numbers) == 6 and len(set(numbers)) == 6


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body,named",
    [
        (
            linear_process('    <bpmn:sendTask id="notify_complainant"/>', node_ids=["notify_complainant"]),
            "notify_complainant",
        ),
        (
            '    <bpmn:startEvent id="start"/>\n    <bpmn:exclusiveGateway id="dead_end"/>\n'
            '    <bpmn:sequenceFlow id="f" sourceRef="start" targetRef="dead_end"/>',
            "dead_end",
        ),
    ],
)
def test_unsupported_element_or_dead_end_gateway_is_400_naming_the_element(api_as, supervisor_sam, body, named):
    response = api_as(supervisor_sam).post(
        "/api/workflow/definitions/", {"bpmn_xml": bpmn_document(body)}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_bpmn"
    assert f"element {named}" in response.json()["detail"] and "line" in response.json()["detail"]


@pytest.mark.django_db
def test_model_routing_to_an_unknown_queue_is_refused(api_as, supervisor_sam):
    xml = PARALLEL_FILE.read_text().replace('name="triage"', 'name="no-such-queue"')
    response = api_as(supervisor_sam).post("/api/workflow/definitions/", {"bpmn_xml": xml}, format="json")
    assert response.status_code == 400 and "no-such-queue" in response.json()["detail"]


@pytest.mark.django_db
def test_start_and_read_a_process_through_the_api(api_as, supervisor_sam):
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=PARALLEL_FILE.read_text())
    client = api_as(supervisor_sam)
    response = client.post(
        "/api/workflow/processes/",
        {"process_key": "parallel_review", "business_key": "P-9", "variables": {"join_count": 0}},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = client.get(f"/api/workflow/processes/{response.json()['id']}").json()
    assert sorted(t["queue"] for t in body["tasks"]) == ["fraud-investigation", "legal-review"]
    assert (
        client.post("/api/workflow/processes/", {"process_key": "nope", "business_key": "x"}, format="json").status_code
        == 400
    )


@pytest.mark.django_db
def test_suspended_instance_refuses_completion_and_resume_allows_it(supervisor_sam, fraud_investigator_bob):
    instance = start_parallel(supervisor_sam)
    finance = WorkflowTask.objects.get(process_instance=instance, task_definition_key="finance_check")
    services.task_claim(user=fraud_investigator_bob, task_id=finance.pk)
    workflows.process_suspend(user=supervisor_sam, process_instance_id=instance.pk)
    with pytest.raises(Conflict), transaction.atomic():
        services.task_complete(user=fraud_investigator_bob, task_id=finance.pk)
    workflows.process_resume(user=supervisor_sam, process_instance_id=instance.pk)
    services.task_complete(user=fraud_investigator_bob, task_id=finance.pk)


@pytest.mark.django_db
def test_cancel_closes_open_tasks_and_keeps_loads_right(supervisor_sam, fraud_investigator_bob):
    instance = start_parallel(supervisor_sam)
    finance = WorkflowTask.objects.get(process_instance=instance, task_definition_key="finance_check")
    services.task_claim(user=fraud_investigator_bob, task_id=finance.pk)
    workflows.process_cancel(user=supervisor_sam, process_instance_id=instance.pk, reason="duplicate")
    assert ProcessInstance.objects.get(pk=instance.pk).status == "CANCELLED"
    assert set(WorkflowTask.objects.filter(process_instance=instance).values_list("status", flat=True)) == {"CANCELLED"}
    from queues.models import WorkflowQueue

    assert WorkflowQueue.objects.get(queue_name="fraud-investigation").current_load == 0


@pytest.mark.django_db
def test_caseworker_cannot_cancel_a_process(caseworker_alice, supervisor_sam):
    from core.errors import NotFound

    instance = start_parallel(supervisor_sam)
    with pytest.raises(NotFound):
        workflows.process_cancel(user=caseworker_alice, process_instance_id=instance.pk)
