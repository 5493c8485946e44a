"""Deploying needs the deploy_workflows right and deploy on the model's queues; starting needs the first queue."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from core.errors import PermissionDenied
from entitlements.models import SecurityEvent, User
from entitlements.services import role_assignment_grant, role_save
from tasks.bpmn import workflows
from tasks.models import ProcessInstance, WorkflowDefinition, WorkflowTask
from tests.tasks.engine.documents import DEMO_FILE, bpmn_document, linear_process, script_task, user_task

LIVE_KEY = "onecms_case_handling"


def script_only_model(process_key: str = LIVE_KEY) -> str:
    """The attack: the live process key, one scriptTask, no user task (so no queue to check deploy against)."""
    body = linear_process(script_task("side_effect", "touched = True"), node_ids=["side_effect"])
    return bpmn_document(body).replace('id="fixture"', f'id="{process_key}"')


@pytest.fixture
def live_workflow(supervisor_sam):
    return workflows.definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())


def test_caseworker_cannot_replace_the_live_workflow_with_a_model_that_has_no_user_task(
    api_as, caseworker_alice, live_workflow
):
    response = api_as(caseworker_alice).post(
        "/api/workflow/definitions/", {"bpmn_xml": script_only_model()}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "deploy_refused"
    assert "deploy_workflows" in response.json()["detail"]
    assert list(WorkflowDefinition.objects.filter(process_key=LIVE_KEY).values_list("version", flat=True)) == [1]
    denial = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED", actor=caseworker_alice).latest("event_id")
    assert denial.path == "/api/workflow/definitions/"


def test_deploy_capability_on_queues_without_the_right_is_refused(fraud_investigator_bob, supervisor_sam):
    # bob gets deploy on every demo queue, but no role with the deploy_workflows right.
    role = role_save(
        role_code="queue-deployer",
        name="Queue deployer",
        queue_names=["intake", "triage", "fraud-investigation", "legal-review", "escalations"],
        permissions=["deploy"],
    )
    role_assignment_grant(user=fraud_investigator_bob, role=role)
    with pytest.raises(PermissionDenied):
        workflows.definition_deploy(user=fraud_investigator_bob, bpmn_xml=DEMO_FILE.read_text())


def test_the_right_without_deploy_on_the_models_queues_is_refused(caseworker_alice):
    role = role_save(role_code="deployer-only", name="Deployer only", queue_names=[], permissions=["deploy_workflows"])
    role_assignment_grant(user=caseworker_alice, role=role)
    with pytest.raises(PermissionDenied, match="route to"):
        workflows.definition_deploy(user=caseworker_alice, bpmn_xml=DEMO_FILE.read_text())


def test_supervisor_with_the_deploy_right_deploys_and_the_replacement_is_audited(api_as, supervisor_sam, live_workflow):
    changed = DEMO_FILE.read_text() + "<!-- revised -->\n"  # an identical model makes no version
    response = api_as(supervisor_sam).post("/api/workflow/definitions/", {"bpmn_xml": changed}, format="json")
    assert response.status_code == 201, response.content
    event = SecurityEvent.objects.filter(event_type="WORKFLOW_DEPLOYED").latest("event_id")
    assert event.actor_id == supervisor_sam.pk
    assert event.details["process_key"] == LIVE_KEY
    assert event.details["version"] == 2
    assert event.details["replaced_version"] == 1
    assert event.details["deployer"] == "supervisor"


def test_first_deploy_records_no_replaced_version(supervisor_sam, live_workflow):
    event = SecurityEvent.objects.filter(event_type="WORKFLOW_DEPLOYED").latest("event_id")
    assert event.details["version"] == 1 and event.details["replaced_version"] is None


def test_the_right_stops_counting_when_its_assignment_is_revoked(supervisor_sam):
    from entitlements.models import UserRoleAssignment
    from entitlements.services import role_assignment_revoke

    assignment = UserRoleAssignment.objects.get(user=supervisor_sam, role__role_code="workflow-deployer")
    role_assignment_revoke(assignment_id=assignment.pk)
    with pytest.raises(PermissionDenied):
        workflows.definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())


def test_deploy_workflow_command_works_for_the_demo_supervisor_and_refuses_a_caseworker(supervisor_sam, tmp_path):
    path = tmp_path / "model.bpmn"
    path.write_text(DEMO_FILE.read_text())
    out = io.StringIO()
    call_command("deploy_workflow", str(path), stdout=out)
    assert "version 1" in out.getvalue()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="deploy_workflows"):
        call_command("deploy_workflow", str(path), "--as-user", "alice", stdout=io.StringIO())


def test_admin_upload_refuses_a_supervisor_without_the_right_beside_the_file_and_audits_it(client, supervisor_sam):
    from entitlements.models import UserRoleAssignment
    from entitlements.services import role_assignment_revoke

    role_assignment_revoke(
        assignment_id=UserRoleAssignment.objects.get(user=supervisor_sam, role__role_code="workflow-deployer").pk
    )
    client.force_login(supervisor_sam)
    upload = SimpleUploadedFile("model.bpmn", script_only_model().encode())
    response = client.post("/admin/tasks/workflowdefinition/add/", {"bpmn_file": upload, "sla_config": "{}"})
    assert response.status_code == 200
    assert "deploy_workflows" in response.context["adminform"].form.errors["bpmn_file"][0]
    assert not WorkflowDefinition.objects.exists()
    assert SecurityEvent.objects.filter(
        event_type="PERMISSION_DENIED", actor=supervisor_sam, details__admin=True
    ).exists()


def test_admin_upload_deploys_through_the_service(client, supervisor_sam):
    client.force_login(supervisor_sam)
    upload = SimpleUploadedFile("model.bpmn", DEMO_FILE.read_bytes())
    response = client.post("/admin/tasks/workflowdefinition/add/", {"bpmn_file": upload, "sla_config": "{}"})
    definition = WorkflowDefinition.objects.get(process_key=LIVE_KEY)
    assert response.status_code == 302 and response.url.endswith(f"/{definition.pk}/change/")
    assert SecurityEvent.objects.filter(event_type="WORKFLOW_DEPLOYED", details__definition_id=definition.pk).exists()


def test_admin_upload_page_renders(client, supervisor_sam):
    client.force_login(supervisor_sam)
    response = client.get("/admin/tasks/workflowdefinition/add/")
    assert response.status_code == 200 and b"bpmn_file" in response.content


def test_a_process_without_user_tasks_cannot_be_started_without_the_start_right(api_as, fraud_investigator_bob):
    workflows.definition_deploy(user=User.objects.get(username="supervisor"), bpmn_xml=script_only_model("scripted"))
    response = api_as(fraud_investigator_bob).post(
        "/api/workflow/processes/", {"process_key": "scripted", "business_key": "S-1"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "start_refused"
    assert not ProcessInstance.objects.filter(business_key="S-1").exists()
    assert SecurityEvent.objects.filter(event_type="PERMISSION_DENIED", actor=fraud_investigator_bob).exists()


def test_the_start_right_lets_a_process_without_user_tasks_start(supervisor_sam, fraud_investigator_bob):
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=script_only_model("scripted"))
    role = role_save(role_code="process-starter", name="Starter", queue_names=[], permissions=["start_processes"])
    role_assignment_grant(user=fraud_investigator_bob, role=role)
    instance = workflows.process_start(user=fraud_investigator_bob, process_key="scripted", business_key="S-2")
    assert instance.status == "COMPLETED"


def test_starting_needs_the_first_queue_not_just_any_queue_of_the_process(
    supervisor_sam, fraud_investigator_bob, caseworker_alice
):
    # bob works fraud-investigation, a later queue of the demo process; its first task waits in intake.
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())
    with pytest.raises(PermissionDenied, match="first queue"):
        workflows.process_start(user=fraud_investigator_bob, process_key=LIVE_KEY, business_key="C-1")
    instance = workflows.process_start(
        user=caseworker_alice,
        process_key=LIVE_KEY,
        business_key="C-2",
        variables={"allegation_type": "FRAUD", "priority": 50},
    )
    assert list(WorkflowTask.objects.filter(process_instance=instance).values_list("queue_id", flat=True)) == ["intake"]


def test_first_queues_are_found_past_scripts_and_gateways(supervisor_sam):
    body = linear_process(
        script_task("prepare", "x = 1"),
        user_task("review", "legal-review"),
        user_task("later", "triage"),
        node_ids=["prepare", "review", "later"],
    )
    definition = workflows.definition_deploy(user=supervisor_sam, bpmn_xml=bpmn_document(body))
    assert definition.engine_spec["start_queue_names"] == ["legal-review"]


def test_definitions_deployed_before_first_queues_were_stored_still_check_them(supervisor_sam, fraud_investigator_bob):
    definition = workflows.definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())
    spec = dict(definition.engine_spec)
    spec.pop("start_queue_names")
    WorkflowDefinition.objects.filter(pk=definition.pk).update(engine_spec=spec)
    with pytest.raises(PermissionDenied, match="first queue"):
        workflows.process_start(user=fraud_investigator_bob, process_key=LIVE_KEY, business_key="C-3")
