"""Suspend, resume and cancel a process instance through the API: who may, what a suspended instance refuses
(claim, claim-next, completion, its timers), and suspension racing a claim on PostgreSQL."""

import functools
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from core.errors import Conflict
from entitlements.models import User
from queues.models import WorkflowQueue
from tasks import services
from tasks.bpmn import workflows
from tasks.models import ProcessInstance, ProcessStatus, TaskHistory, TaskStatus, WorkflowDefinition, WorkflowTask
from tests.tasks.engine.documents import bpmn_document, user_task


def review_model() -> str:
    """review (triage), with a one-hour interrupting timer to `chase` (triage); review → check (triage) → end."""
    return bpmn_document(
        '    <bpmn:startEvent id="start"/>\n'
        + user_task("review")
        + "\n"
        + user_task("check")
        + "\n"
        + user_task("chase")
        + '\n    <bpmn:boundaryEvent id="after_an_hour" attachedToRef="review"><bpmn:timerEventDefinition>'
        "<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>\n"
        '    <bpmn:endEvent id="end"/><bpmn:endEvent id="chased"/>\n'
        '    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="review"/>\n'
        '    <bpmn:sequenceFlow id="f1" sourceRef="review" targetRef="check"/>\n'
        '    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="end"/>\n'
        '    <bpmn:sequenceFlow id="f3" sourceRef="after_an_hour" targetRef="chase"/>\n'
        '    <bpmn:sequenceFlow id="f4" sourceRef="chase" targetRef="chased"/>'
    )


def start_review(supervisor, business_key="L-1") -> ProcessInstance:
    if not WorkflowDefinition.objects.filter(process_key="fixture").exists():
        workflows.definition_deploy(user=supervisor, bpmn_xml=review_model())
    return workflows.process_start(user=supervisor, process_key="fixture", business_key=business_key)


def active_task(instance, key="review") -> WorkflowTask:
    return WorkflowTask.objects.get(
        process_instance=instance, task_definition_key=key, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
    )


def open_task_keys(instance) -> list[str]:
    return sorted(
        WorkflowTask.objects.filter(
            process_instance=instance, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        ).values_list("task_definition_key", flat=True)
    )


@pytest.fixture
def instance(supervisor_sam):
    return start_review(supervisor_sam)


# --- the done-when: skipped by claim-next, refused by claim and completion, and flowing again on resume ----------


@pytest.mark.django_db
def test_a_suspended_instances_task_is_skipped_by_claim_next_refused_by_claim_and_flows_again_on_resume(
    api_as, supervisor_sam, caseworker_alice, make_task, instance
):
    review = active_task(instance)
    WorkflowTask.objects.filter(pk=review.pk).update(priority=90)  # the head of triage, were it not suspended
    other = make_task("triage", name="Unrelated triage work", priority=10)
    supervisor, alice = api_as(supervisor_sam), api_as(caseworker_alice)

    response = supervisor.post(
        f"/api/workflow/processes/{instance.pk}/suspend", {"reason": "fraud hold"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "SUSPENDED"
    assert WorkflowTask.objects.get(pk=review.pk).suspended is True

    refused = alice.post(f"/api/workflow/tasks/{review.pk}/claim")
    assert refused.status_code == 409 and refused.json()["code"] == "process_suspended", refused.content
    claimed = alice.post("/api/workflow/tasks/claim/next")
    assert claimed.status_code == 200 and claimed.json()["id"] == other.pk  # passed over the suspended head
    assert alice.post("/api/workflow/tasks/claim/next").status_code == 204  # nothing else to claim

    response = supervisor.post(f"/api/workflow/processes/{instance.pk}/resume", format="json")
    assert response.status_code == 200 and response.json()["status"] == "RUNNING"
    claimed = alice.post("/api/workflow/tasks/claim/next")
    assert claimed.status_code == 200 and claimed.json()["id"] == review.pk
    assert claimed.json()["suspended"] is False
    completed = alice.post(f"/api/workflow/tasks/{review.pk}/complete", {"variables": {}}, format="json")
    assert completed.status_code == 200, completed.content
    assert open_task_keys(instance) == ["check"]


@pytest.mark.django_db
def test_a_task_claimed_before_the_suspension_cannot_be_completed_until_resumed(
    api_as, supervisor_sam, caseworker_alice, instance
):
    review = active_task(instance)
    alice = api_as(caseworker_alice)
    assert alice.post(f"/api/workflow/tasks/{review.pk}/claim").status_code == 200
    api_as(supervisor_sam).post(f"/api/workflow/processes/{instance.pk}/suspend", format="json")

    refused = alice.post(f"/api/workflow/tasks/{review.pk}/complete", {"variables": {}}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "process_suspended"
    assert active_task(instance).status == TaskStatus.CLAIMED  # still alice's, nothing moved
    assert open_task_keys(instance) == ["review"]

    workflows.process_resume(user=supervisor_sam, process_instance_id=instance.pk)
    assert alice.post(f"/api/workflow/tasks/{review.pk}/complete", {"variables": {}}, format="json").status_code == 200
    assert open_task_keys(instance) == ["check"]


@pytest.mark.django_db
def test_suspend_and_resume_are_in_each_active_tasks_history(supervisor_sam, instance):
    review = active_task(instance)
    workflows.process_suspend(user=supervisor_sam, process_instance_id=instance.pk, reason="on hold")
    workflows.process_resume(user=supervisor_sam, process_instance_id=instance.pk)
    events = list(
        TaskHistory.objects.filter(task=review, event_type__in=["SUSPENDED", "RESUMED"])
        .order_by("event_id")
        .values_list("event_type", "actor__username", "comment", "new_values")
    )
    assert events == [
        ("SUSPENDED", "supervisor", "on hold", {"suspended": True}),
        ("RESUMED", "supervisor", "", {"suspended": False}),
    ]


@pytest.mark.django_db
def test_a_suspended_instances_timer_does_not_fire_until_it_is_resumed(supervisor_sam, instance):
    later = timezone.now() + timedelta(hours=2)
    workflows.process_suspend(user=supervisor_sam, process_instance_id=instance.pk)
    assert workflows.process_fire_due_timers(now=later) == 0
    assert open_task_keys(instance) == ["review"]

    workflows.process_resume(user=supervisor_sam, process_instance_id=instance.pk)
    assert workflows.process_fire_due_timers(now=later) == 1
    assert open_task_keys(instance) == ["chase"]


# --- cancel ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("suspended_first", [False, True])
def test_cancel_through_the_api_closes_the_tasks_and_gives_the_claimed_ones_load_back(
    api_as, supervisor_sam, caseworker_alice, instance, suspended_first
):
    review = active_task(instance)
    services.task_claim(user=caseworker_alice, task_id=review.pk)
    load = WorkflowQueue.objects.get(queue_name="triage").current_load
    supervisor = api_as(supervisor_sam)
    if suspended_first:
        supervisor.post(f"/api/workflow/processes/{instance.pk}/suspend", format="json")
    response = supervisor.post(f"/api/workflow/processes/{instance.pk}/cancel", {"reason": "duplicate"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["tasks"] == [{"id": review.pk, "name": "Review", "queue": "triage", "status": "CANCELLED"}]
    assert WorkflowQueue.objects.get(queue_name="triage").current_load == load - 1
    assert TaskHistory.objects.get(task=review, event_type="CANCELLED").comment == "duplicate"
    again = supervisor.post(f"/api/workflow/processes/{instance.pk}/cancel", format="json")
    assert again.status_code == 409 and again.json()["code"] == "process_ended"


# --- who may, and which states refuse ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["suspend", "resume", "cancel"])
@pytest.mark.parametrize("username", ["alice", "bob", "integration"])
def test_only_supervisors_of_the_instances_queues_may_change_its_lifecycle(api_as, instance, action, username):
    # alice works triage, where the instance's task is (the supervisor-only task actions answer her 404 too);
    # bob and the integration account do not reach it at all.
    if action == "resume":
        workflows.process_suspend(user=User.objects.get(username="supervisor"), process_instance_id=instance.pk)
    before = ProcessInstance.objects.get(pk=instance.pk).status
    response = api_as(User.objects.get(username=username)).post(
        f"/api/workflow/processes/{instance.pk}/{action}", format="json"
    )
    assert response.status_code == 404 and response.json()["code"] == "process_not_found"
    assert ProcessInstance.objects.get(pk=instance.pk).status == before


@pytest.mark.django_db
def test_lifecycle_actions_need_authentication_and_an_existing_instance(api_client, api_as, supervisor_sam, instance):
    assert api_client.post(f"/api/workflow/processes/{instance.pk}/suspend").status_code == 401
    missing = api_as(supervisor_sam).post("/api/workflow/processes/987654321/suspend", format="json")
    assert missing.status_code == 404 and missing.json()["code"] == "process_not_found"


@pytest.mark.django_db
def test_lifecycle_actions_refuse_the_wrong_state_with_409(api_as, supervisor_sam, instance):
    supervisor = api_as(supervisor_sam)
    resume = supervisor.post(f"/api/workflow/processes/{instance.pk}/resume", format="json")
    assert resume.status_code == 409 and resume.json()["code"] == "process_not_suspended"
    assert supervisor.post(f"/api/workflow/processes/{instance.pk}/suspend", format="json").status_code == 200
    again = supervisor.post(f"/api/workflow/processes/{instance.pk}/suspend", format="json")
    assert again.status_code == 409 and again.json()["code"] == "process_not_running"
    bad = supervisor.post(f"/api/workflow/processes/{instance.pk}/cancel", {"reason": 5 * "x" * 5000}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()["fields"]


# --- suspension racing a claim -----------------------------------------------------------------------------------


def race(*calls):
    """Run the calls at the same moment, each on its own connection; their results (a value or the exception)."""
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


ROUNDS = 6


@pytest.mark.parametrize("claim_next", [False, True], ids=["claim", "claim-next"])
def test_suspend_racing_a_claim_either_claims_then_suspends_or_refuses_never_completes(committed_db, claim_next):
    supervisor, alice = User.objects.get(username="supervisor"), User.objects.get(username="alice")
    outcomes = set()
    for round_ in range(ROUNDS):
        instance = start_review(supervisor, business_key=f"R-{round_}")
        review = active_task(instance)
        if claim_next:
            claim = functools.partial(services.task_claim_next, user=alice, queue_names=["triage"])
        else:
            claim = functools.partial(services.task_claim, user=alice, task_id=review.pk)
        suspend = functools.partial(workflows.process_suspend, user=supervisor, process_instance_id=instance.pk)
        suspended, claimed = race(suspend, claim)
        assert isinstance(suspended, ProcessInstance), suspended
        task = WorkflowTask.objects.get(pk=review.pk)
        assert task.suspended is True
        if isinstance(claimed, WorkflowTask):
            assert claimed.pk == review.pk
            assert task.status == TaskStatus.CLAIMED and task.assignee_id == alice.pk
            outcomes.add("claimed then suspended")
            with pytest.raises(Conflict) as refused:
                services.task_complete(user=alice, task_id=review.pk, variables={})
            assert refused.value.code == "process_suspended"
            assert WorkflowTask.objects.get(pk=review.pk).status == TaskStatus.CLAIMED
        else:
            if claim_next:
                assert claimed is None  # passed over: the only OPEN task in triage was suspended
            else:
                assert isinstance(claimed, Conflict) and claimed.code == "process_suspended", claimed
            assert task.status == TaskStatus.OPEN and task.assignee_id is None
            outcomes.add("refused")
        assert ProcessInstance.objects.get(pk=instance.pk).status == ProcessStatus.SUSPENDED
        workflows.process_cancel(user=supervisor, process_instance_id=instance.pk)  # leave triage empty
    assert WorkflowQueue.objects.get(queue_name="triage").current_load == 0
    assert outcomes  # which interleavings occurred is up to the scheduler; each one was checked above
