"""BPMN errors and escalations: an error (escalation) end event inside an embedded subprocess, caught by a
boundary error (escalation) event on it (Camunda Modeler files), run through the services; and what deploy
refuses."""

from pathlib import Path

import pytest

from tasks import services
from tasks.bpmn import workflows
from tasks.models import ProcessStatus, TaskStatus, WorkflowTask

MODELS = Path(__file__).resolve().parent / "engine" / "errors"
PROCESS_KEYS = {"error_boundary": "checked_payment", "escalation_boundary": "escalated_payment"}


def active(instance) -> list[str]:
    return sorted(
        WorkflowTask.objects.filter(
            process_instance=instance, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
        ).values_list("task_definition_key", flat=True)
    )


def verified(supervisor, alice, name: str, valid: bool):
    """Deploy `name`, start it and complete its `verify` task (inside the subprocess) with `valid`."""
    workflows.definition_deploy(user=supervisor, bpmn_xml=(MODELS / f"{name}.bpmn").read_text())
    instance = workflows.process_start(user=supervisor, process_key=PROCESS_KEYS[name], business_key="E-1")
    verify = WorkflowTask.objects.get(process_instance=instance, task_definition_key="verify")
    services.task_claim(user=alice, task_id=verify.pk)
    services.task_complete(user=alice, task_id=verify.pk, variables={"valid": valid})
    instance.refresh_from_db()
    return instance


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["error_boundary", "escalation_boundary"])
def test_a_thrown_code_leaves_the_subprocess_by_its_boundary_event(supervisor_sam, caseworker_alice, name):
    instance = verified(supervisor_sam, caseworker_alice, name, valid=False)
    assert instance.status == ProcessStatus.RUNNING
    assert active(instance) == ["handle_invalid"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["error_boundary", "escalation_boundary"])
def test_without_the_throw_the_subprocess_ends_normally(supervisor_sam, caseworker_alice, name):
    instance = verified(supervisor_sam, caseworker_alice, name, valid=True)
    assert active(instance) == ["pay"]
    pay = WorkflowTask.objects.get(process_instance=instance, task_definition_key="pay")
    services.task_claim(user=caseworker_alice, task_id=pay.pk)
    services.task_complete(user=caseworker_alice, task_id=pay.pk, variables={})
    instance.refresh_from_db()
    assert instance.status == ProcessStatus.COMPLETED


def deploy_refusal(api_as, supervisor, xml: str) -> str:
    response = api_as(supervisor).post("/api/workflow/definitions/", {"bpmn_xml": xml}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_bpmn", response.content
    return response.json()["detail"]


@pytest.mark.django_db
def test_a_boundary_error_event_on_a_user_task_is_refused_naming_it(api_as, supervisor_sam):
    xml = (MODELS / "error_boundary.bpmn").read_text().replace('attachedToRef="verification"', 'attachedToRef="pay"')
    detail = deploy_refusal(api_as, supervisor_sam, xml)
    assert "element verification_failed" in detail and "attach it to one" in detail and "line" in detail


@pytest.mark.django_db
def test_an_error_ref_to_no_error_of_the_document_is_refused(api_as, supervisor_sam):
    xml = (
        (MODELS / "error_boundary.bpmn").read_text().replace('errorRef="Error_invalid" />', 'errorRef="Error_x" />', 1)
    )
    detail = deploy_refusal(api_as, supervisor_sam, xml)
    assert "errorRef 'Error_x'" in detail and "element ErrorEventDefinition_throw" in detail


@pytest.mark.django_db
def test_a_start_event_of_the_process_waiting_for_a_timer_is_refused(api_as, supervisor_sam):
    xml = (
        (MODELS / "error_boundary.bpmn")
        .read_text()
        .replace(
            "<bpmn:outgoing>Flow_in</bpmn:outgoing>",
            "<bpmn:outgoing>Flow_in</bpmn:outgoing><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H"
            "</bpmn:timeDuration></bpmn:timerEventDefinition>",
        )
    )
    detail = deploy_refusal(api_as, supervisor_sam, xml)
    assert "may wait for one message or one signal and nothing else" in detail and "element start" in detail
