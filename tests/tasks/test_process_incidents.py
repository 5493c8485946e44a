"""Script limits on PostgreSQL: a request answers 409 with nothing applied; the timer sweep records an incident."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import Conflict, NotFound
from tasks import services
from tasks.bpmn import engine, workflows
from tasks.models import IncidentKind, ProcessIncident, ProcessInstance, TaskStatus, WorkflowTask
from tests.tasks.engine.documents import bpmn_document, linear_process, script_task, user_task

# About 100 MB: over the default limit of 64 MB, within 256 MB; memory, so no test depends on timing.
HEAVY = 'n = len("a" * size)'
HEAVY_SIZE = 100_000_000
ROOMY_MEMORY_MB = 256


def timer_model() -> str:
    """review (triage) → after an hour the timer interrupts it → the script `heavy` → escalated (triage)."""
    return bpmn_document(
        '    <bpmn:startEvent id="start"/>\n'
        + user_task("review")
        + '\n    <bpmn:boundaryEvent id="after_an_hour" attachedToRef="review"><bpmn:timerEventDefinition>'
        "<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>\n"
        + script_task("heavy", HEAVY)
        + user_task("escalated")
        + '\n    <bpmn:endEvent id="end"/><bpmn:endEvent id="done"/>'
        '<bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="review"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="review" targetRef="done"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="after_an_hour" targetRef="heavy"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="heavy" targetRef="escalated"/>'
        '<bpmn:sequenceFlow id="f4" sourceRef="escalated" targetRef="end"/>'
    )


def start_timer_model(supervisor, business_key: str, size: int, now=None) -> ProcessInstance:
    return workflows.process_start(
        user=supervisor, process_key="fixture", business_key=business_key, variables={"size": size}, now=now
    )


def open_task_keys(instance) -> list[str]:
    return sorted(
        WorkflowTask.objects.filter(
            process_instance=instance, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        ).values_list("task_definition_key", flat=True)
    )


@pytest.fixture
def timer_definition(supervisor_sam):
    return workflows.definition_deploy(user=supervisor_sam, bpmn_xml=timer_model())


# --- in a request ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_starting_a_process_whose_script_loops_answers_409_naming_the_element_and_creates_nothing(
    api_as, supervisor_sam
):
    model = bpmn_document(
        linear_process(script_task("spin", "while True: pass"), user_task("review"), node_ids=["spin", "review"])
    )
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=model)

    response = api_as(supervisor_sam).post(
        "/api/workflow/processes/", {"process_key": "fixture", "business_key": "LOOP-1"}, format="json"
    )

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "script_limit_exceeded"
    assert "spin" in response.json()["detail"]
    assert not ProcessInstance.objects.filter(business_key="LOOP-1").exists()


@pytest.mark.django_db
def test_completing_a_task_whose_next_script_exhausts_memory_answers_409_and_the_task_stays_claimed(
    api_as, supervisor_sam, caseworker_alice
):
    model = bpmn_document(
        linear_process(
            user_task("review"),
            script_task("hog", "x = [0] * 10**9"),
            user_task("after"),
            node_ids=["review", "hog", "after"],
        )
    )
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=model)
    instance = workflows.process_start(user=supervisor_sam, process_key="fixture", business_key="HOG-1")
    task = WorkflowTask.objects.get(process_instance=instance, task_definition_key="review")
    services.task_claim(user=caseworker_alice, task_id=task.pk)
    state_before = ProcessInstance.objects.get(pk=instance.pk).engine_state

    response = api_as(caseworker_alice).post(
        f"/api/workflow/tasks/{task.pk}/complete", {"variables": {}}, format="json"
    )

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "script_limit_exceeded"
    assert "hog" in response.json()["detail"]
    task.refresh_from_db()
    assert task.status == TaskStatus.CLAIMED
    assert ProcessInstance.objects.get(pk=instance.pk).engine_state == state_before
    assert open_task_keys(instance) == ["review"]


@pytest.mark.django_db
def test_a_script_error_that_is_not_a_limit_keeps_its_400(supervisor_sam):
    model = bpmn_document(
        linear_process(script_task("divide", "x = 1 / 0"), user_task("review"), node_ids=["divide", "review"])
    )
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=model)

    with pytest.raises(Exception) as caught:
        workflows.process_start(user=supervisor_sam, process_key="fixture", business_key="DIV-1")

    assert caught.value.http_status == 400 and "ZeroDivisionError" in caught.value.detail


# --- in the timer sweep (a beat job) --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_timer_step_stopped_at_its_limit_records_an_incident_and_the_rest_of_the_batch_moves(
    timer_definition, supervisor_sam
):
    failing = start_timer_model(supervisor_sam, "T-FAIL", HEAVY_SIZE)
    fine = start_timer_model(supervisor_sam, "T-FINE", 1)
    state_before = ProcessInstance.objects.get(pk=failing.pk).engine_state

    moved = workflows.process_fire_due_timers(now=timezone.now() + timedelta(hours=2))

    assert moved == 1
    incident = ProcessIncident.objects.get(process_instance=failing)
    assert (incident.kind, incident.element_id, incident.resolved_at) == (IncidentKind.SCRIPT_LIMIT, "heavy", None)
    assert "memory" in incident.message
    assert ProcessInstance.objects.get(pk=failing.pk).engine_state == state_before
    assert open_task_keys(failing) == ["review"]
    assert open_task_keys(fine) == ["escalated"]
    assert not ProcessIncident.objects.filter(process_instance=fine).exists()


@pytest.mark.django_db
def test_the_sweep_leaves_an_instance_with_an_open_incident_alone(timer_definition, supervisor_sam, monkeypatch):
    start_timer_model(supervisor_sam, "T-FAIL", HEAVY_SIZE)
    later = timezone.now() + timedelta(hours=2)
    workflows.process_fire_due_timers(now=later)
    calls = []
    monkeypatch.setattr(engine, "fire_due_timers", lambda **kwargs: calls.append(kwargs))

    assert workflows.process_fire_due_timers(now=later + timedelta(minutes=5)) == 0

    assert calls == []
    assert ProcessIncident.objects.count() == 1


@pytest.mark.django_db
def test_retry_after_the_cause_is_fixed_resolves_the_incident_and_moves_the_instance(
    timer_definition, supervisor_sam, settings
):
    instance = start_timer_model(supervisor_sam, "T-FAIL", HEAVY_SIZE)
    workflows.process_fire_due_timers(now=timezone.now() + timedelta(hours=2))
    incident = ProcessIncident.objects.get(process_instance=instance)
    settings.WORKFLOW_SCRIPT_MEMORY_MB = ROOMY_MEMORY_MB  # the operator's fix

    retried = workflows.process_incident_retry(
        user=supervisor_sam, incident_id=incident.pk, now=timezone.now() + timedelta(hours=2)
    )

    assert retried.resolved_at is not None and retried.resolved_by == supervisor_sam
    assert open_task_keys(instance) == ["escalated"]


@pytest.mark.django_db
def test_retry_that_fails_again_keeps_the_incident_open_with_the_new_error(timer_definition, supervisor_sam):
    instance = start_timer_model(supervisor_sam, "T-FAIL", HEAVY_SIZE)
    workflows.process_fire_due_timers(now=timezone.now() + timedelta(hours=2))
    incident = ProcessIncident.objects.get(process_instance=instance)

    retried = workflows.process_incident_retry(
        user=supervisor_sam, incident_id=incident.pk, now=timezone.now() + timedelta(hours=2)
    )

    assert retried.pk == incident.pk and retried.resolved_at is None
    assert ProcessIncident.objects.filter(process_instance=instance, resolved_at__isnull=True).count() == 1
    assert open_task_keys(instance) == ["review"]


@pytest.mark.django_db
def test_a_caseworker_may_not_retry_an_incident(timer_definition, supervisor_sam, caseworker_alice):
    instance = start_timer_model(supervisor_sam, "T-FAIL", HEAVY_SIZE)
    workflows.process_fire_due_timers(now=timezone.now() + timedelta(hours=2))
    incident = ProcessIncident.objects.get(process_instance=instance)

    with pytest.raises(NotFound):
        workflows.process_incident_retry(user=caseworker_alice, incident_id=incident.pk)

    assert ProcessIncident.objects.get(pk=incident.pk).resolved_at is None


@pytest.mark.django_db
def test_a_resolved_incident_cannot_be_retried_again(timer_definition, supervisor_sam, settings):
    instance = start_timer_model(supervisor_sam, "T-FAIL", HEAVY_SIZE)
    workflows.process_fire_due_timers(now=timezone.now() + timedelta(hours=2))
    incident = ProcessIncident.objects.get(process_instance=instance)
    settings.WORKFLOW_SCRIPT_MEMORY_MB = ROOMY_MEMORY_MB
    workflows.process_incident_retry(
        user=supervisor_sam, incident_id=incident.pk, now=timezone.now() + timedelta(hours=2)
    )

    with pytest.raises(Conflict):
        workflows.process_incident_retry(user=supervisor_sam, incident_id=incident.pk)
