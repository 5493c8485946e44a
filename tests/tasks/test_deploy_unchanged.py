"""Deploying a model identical to the version in use makes no new version: command, API and admin say so."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from core.errors import PermissionDenied
from entitlements.models import SecurityEvent
from tasks.bpmn import workflows
from tasks.models import WorkflowDefinition
from tests.tasks.engine.documents import DEMO_FILE

LIVE_KEY = "onecms_case_handling"


def versions() -> list[int]:
    return list(
        WorkflowDefinition.objects.filter(process_key=LIVE_KEY).order_by("version").values_list("version", flat=True)
    )


def test_deploying_the_same_model_again_returns_the_version_in_use_and_writes_nothing(supervisor_sam):
    first = workflows.definition_deploy_if_changed(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())
    events = SecurityEvent.objects.filter(event_type="WORKFLOW_DEPLOYED").count()

    again = workflows.definition_deploy_if_changed(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())

    assert (first.created, again.created) == (True, False)
    assert again.definition.pk == first.definition.pk
    assert versions() == [1]
    assert SecurityEvent.objects.filter(event_type="WORKFLOW_DEPLOYED").count() == events


def test_a_changed_model_or_sla_configuration_is_a_new_version(supervisor_sam):
    workflows.definition_deploy_if_changed(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())

    sla = workflows.definition_deploy_if_changed(
        user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text(), sla_config={"tasks": {"intake": 8}}
    )
    edited = workflows.definition_deploy_if_changed(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text() + "\n")

    assert (sla.created, sla.definition.version) == (True, 2)
    assert (edited.created, edited.definition.version) == (True, 3)


def test_the_same_model_as_a_deactivated_latest_version_is_compared_with_the_version_in_use(supervisor_sam):
    workflows.definition_deploy_if_changed(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())
    second = workflows.definition_deploy_if_changed(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text() + "\n")
    WorkflowDefinition.objects.filter(pk=second.definition.pk).update(is_active=False)

    again = workflows.definition_deploy_if_changed(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())

    assert (again.created, again.definition.version) == (False, 1)


def test_an_unchanged_model_is_still_refused_to_who_may_not_deploy(supervisor_sam, caseworker_alice):
    workflows.definition_deploy_if_changed(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())

    with pytest.raises(PermissionDenied, match="deploy_workflows"):
        workflows.definition_deploy_if_changed(user=caseworker_alice, bpmn_xml=DEMO_FILE.read_text())


def test_deploy_workflow_says_unchanged_for_an_identical_file(supervisor_sam, tmp_path):
    path = tmp_path / "model.bpmn"
    path.write_text(DEMO_FILE.read_text())
    first, second = io.StringIO(), io.StringIO()

    call_command("deploy_workflow", str(path), stdout=first)
    call_command("deploy_workflow", str(path), stdout=second)

    assert first.getvalue().strip() == f"Deployed {LIVE_KEY} version 1."
    assert second.getvalue().strip() == f"{LIVE_KEY} unchanged: still version 1."
    assert versions() == [1]


def test_api_deploy_of_an_identical_model_is_200_with_the_version_in_use(api_as, supervisor_sam):
    client = api_as(supervisor_sam)

    created = client.post("/api/workflow/definitions/", {"bpmn_xml": DEMO_FILE.read_text()}, format="json")
    unchanged = client.post("/api/workflow/definitions/", {"bpmn_xml": DEMO_FILE.read_text()}, format="json")

    assert (created.status_code, created.json()["version"]) == (201, 1)
    assert (unchanged.status_code, unchanged.json()["version"]) == (200, 1)
    assert unchanged.json()["id"] == created.json()["id"]
    assert versions() == [1]


def test_admin_upload_of_an_identical_model_says_unchanged(client, supervisor_sam):
    workflows.definition_deploy_if_changed(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())
    client.force_login(supervisor_sam)

    upload = SimpleUploadedFile("model.bpmn", DEMO_FILE.read_bytes())
    response = client.post(
        "/admin/tasks/workflowdefinition/add/", {"bpmn_file": upload, "sla_config": "{}"}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == [f"{LIVE_KEY} unchanged: still version 1."]
    assert versions() == [1]
