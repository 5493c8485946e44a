"""A definition's sla_config is validated at deploy; a malformed one is refused with the bad entries named."""

import pytest

from cases.services import case_open
from tasks.bpmn import workflows
from tasks.models import WorkflowDefinition, WorkflowTask
from tests.tasks.engine.documents import DEMO_FILE

pytestmark = pytest.mark.django_db

DEFINITIONS_URL = "/api/workflow/definitions/"


def deploy_via_api(client, sla_config):
    return client.post(DEFINITIONS_URL, {"bpmn_xml": DEMO_FILE.read_text(), "sla_config": sla_config}, format="json")


@pytest.mark.parametrize(
    "sla_config,named",
    [
        ({"priority_hours": {"x": "y"}}, "priority_hours.x"),
        ({"priority_hours": {"70": 0}}, "priority_hours.70"),
        ({"priority_hours": {"101": 4}}, "priority_hours.101"),
        ({"tasks": {"intake_review": "soon"}}, "tasks.intake_review"),
        ({"tasks": {"intake_review": True}}, "tasks.intake_review"),
        ({"tasks": ["intake_review"]}, "tasks"),
        ({"priority": {"70": 4}}, "priority"),
    ],
)
def test_deploy_with_a_bad_sla_config_is_a_400_naming_the_entry_and_stores_nothing(
    api_as, supervisor_sam, sla_config, named
):
    response = deploy_via_api(api_as(supervisor_sam), sla_config)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_sla_config"
    assert body["fields"]["sla_config"][0].startswith(f"{named}: ")
    assert not WorkflowDefinition.objects.exists()


def test_a_valid_sla_config_is_deployed_and_sets_due_dates(api_as, supervisor_sam, caseworker_alice):
    response = deploy_via_api(api_as(supervisor_sam), {"tasks": {"intake_review": 2}, "priority_hours": {"90": 1}})

    assert response.status_code == 201, response.json()
    case = case_open(
        user=caseworker_alice,
        title="t",
        description="d",
        allegations=[{"type": "FRAUD", "description": "x", "date": "2026-01-15"}],
    )
    assert WorkflowTask.objects.filter(process_instance__business_key=case.case_number).get().due_date is not None


def test_intake_keeps_working_with_a_malformed_config_stored_before_validation(supervisor_sam, caseworker_alice):
    definition = workflows.definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())
    WorkflowDefinition.objects.filter(pk=definition.pk).update(sla_config={"priority_hours": {"x": "y"}, "tasks": 3})

    case = case_open(
        user=caseworker_alice,
        title="t",
        description="d",
        allegations=[{"type": "FRAUD", "description": "x", "date": "2026-01-15"}],
    )

    assert WorkflowTask.objects.filter(process_instance__business_key=case.case_number).count() == 1


def test_the_deploy_command_refuses_a_bad_config_with_one_line(tmp_path, supervisor_sam):
    from django.core.management import CommandError, call_command

    config = tmp_path / "sla.json"
    config.write_text('{"priority_hours": {"x": "y"}}')

    with pytest.raises(CommandError, match="sla_config: priority_hours.x"):
        call_command("deploy_workflow", str(DEMO_FILE), "--as-user", "supervisor", "--sla-config", str(config))
    assert not WorkflowDefinition.objects.exists()
