"""A form field marked sensitive is stored sealed wherever its value goes (task and instance variables, engine
state), task history records a marker instead, and pages, API and admin show the plaintext to who may see the task."""

from pathlib import Path

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from core import encryption
from tasks.bpmn import engine
from tasks.bpmn.forms import SENSITIVE_HISTORY_MARKER
from tasks.bpmn.workflows import definition_deploy, process_start
from tasks.models import ProcessInstance, TaskHistory, WorkflowTask
from tasks.services import task_claim, task_complete, task_delegate, task_resolve
from tests.tasks.engine.documents import bpmn_document, linear_process, user_task

pytestmark = pytest.mark.django_db
DEMO_BPMN = Path(__file__).resolve().parents[2] / "tasks" / "bpmn" / "onecms_case_handling.bpmn"
NOTES = "The complainant named Jordan Reyes from accounts"
COMMENT = "Called Jordan back at five"
SENSITIVE = '<camunda:properties><camunda:property id="sensitive" value="true"/></camunda:properties>'


def form(*fields: str) -> str:
    return f"<camunda:formData>{''.join(fields)}</camunda:formData>"


def test_the_sensitive_marker_is_read_from_the_form_field_properties():
    parsed = engine.parse_definition(bpmn_xml=DEMO_BPMN.read_text())
    intake = next(t for t in parsed.user_tasks if t.id == "intake_review")
    assert {f.id: f.sensitive for f in intake.form_fields} == {
        "received_on": False,
        "received_via": False,
        "anonymous": False,
        "intake_notes": True,
    }


def test_only_text_valued_fields_may_be_sensitive():
    field = f'<camunda:formField id="approve" type="boolean">{SENSITIVE}</camunda:formField>'
    document = bpmn_document(linear_process(user_task("review", extensions=form(field)), node_ids=["review"]))
    with pytest.raises(engine.BpmnError, match="'approve' is marked sensitive but has type 'boolean'"):
        engine.parse_definition(bpmn_xml=document)


def test_a_model_whose_condition_reads_a_sensitive_field_is_refused():
    field = f'<camunda:formField id="notes" type="text">{SENSITIVE}</camunda:formField>'
    body = (
        '    <bpmn:startEvent id="start"/>\n'
        + user_task("review", extensions=form(field))
        + '\n    <bpmn:exclusiveGateway id="gate" default="to_a"/>'
        '\n    <bpmn:endEvent id="a"/><bpmn:endEvent id="b"/>'
        '\n    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>'
        '\n    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="gate"/>'
        '\n    <bpmn:sequenceFlow id="to_a" sourceRef="gate" targetRef="a"/>'
        '\n    <bpmn:sequenceFlow id="to_b" sourceRef="gate" targetRef="b">'
        '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">"fraud" in notes</bpmn:conditionExpression>'
        "</bpmn:sequenceFlow>"
    )
    with pytest.raises(engine.BpmnError, match="'notes' is sensitive") as raised:
        engine.parse_definition(bpmn_xml=bpmn_document(body))
    assert raised.value.element_id == "to_b"


@pytest.fixture
def instance(supervisor_sam, caseworker_alice):
    definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())
    return process_start(user=caseworker_alice, process_key="onecms_case_handling", business_key="CASE-SENSITIVE")


@pytest.fixture
def completed_intake(instance, caseworker_alice):
    task = WorkflowTask.objects.get(process_instance=instance, status="OPEN")
    task_claim(user=caseworker_alice, task_id=task.pk)
    return task_complete(
        user=caseworker_alice,
        task_id=task.pk,
        variables={"received_on": "2026-01-16", "received_via": "PHONE", "intake_notes": NOTES},
        comment=COMMENT,
    )


def raw_text(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return " ".join(str(row[0]) for row in cursor.fetchall())


def test_a_sensitive_value_is_stored_sealed_everywhere_it_is_copied(completed_intake, instance):
    stored = " ".join(
        [
            raw_text(
                "SELECT variables::text FROM flowable.workflow_tasks WHERE process_instance_id = %s", [instance.pk]
            ),
            raw_text(
                "SELECT variables::text || engine_state::text FROM flowable.process_instances "
                "WHERE process_instance_id = %s",
                [instance.pk],
            ),
            raw_text(
                "SELECT h.old_values::text || h.new_values::text || h.comment FROM flowable.task_history h "
                "JOIN flowable.workflow_tasks t USING (task_id) WHERE t.process_instance_id = %s",
                [instance.pk],
            ),
        ]
    )
    assert "Jordan" not in stored
    assert "enc:v1:" in stored
    task = WorkflowTask.objects.get(pk=completed_intake.pk)
    assert encryption.is_sealed(task.variables["intake_notes"])
    assert task.variables["received_via"] == "PHONE"  # not sensitive: clear
    assert encryption.is_sealed(ProcessInstance.objects.get(pk=instance.pk).variables["intake_notes"])


def test_history_records_a_marker_for_the_sensitive_value(completed_intake):
    event = TaskHistory.objects.get(task=completed_intake, event_type="COMPLETED")
    assert event.new_values["variables"]["intake_notes"] == SENSITIVE_HISTORY_MARKER
    assert event.new_values["variables"]["received_via"] == "PHONE"


def test_the_workflow_runs_on_with_the_sealed_value(completed_intake, instance):
    assert WorkflowTask.objects.get(process_instance=instance, status="OPEN").task_definition_key == "triage"


def test_api_pages_and_admin_show_the_plaintext(completed_intake, instance, api_as, caseworker_alice, supervisor_sam):
    client = api_as(caseworker_alice)
    assert client.get(f"/api/workflow/tasks/{completed_intake.pk}").json()["variables"]["intake_notes"] == NOTES
    assert client.get(f"/api/workflow/processes/{instance.pk}").json()["variables"]["intake_notes"] == NOTES
    history = client.get(f"/api/workflow/tasks/{completed_intake.pk}/history").json()
    assert COMMENT in [event["comment"] for event in history]
    page = Client()
    page.force_login(caseworker_alice)
    assert COMMENT in page.get(f"/tasks/{completed_intake.pk}/").content.decode()
    admin = Client()
    admin.force_login(supervisor_sam)
    for url in (
        reverse("admin:tasks_workflowtask_change", args=[completed_intake.pk]),
        reverse("admin:tasks_processinstance_change", args=[instance.pk]),
    ):
        response = admin.get(url)
        assert response.status_code == 200
        assert NOTES in response.content.decode()


def test_a_sensitive_value_under_a_missing_key_shows_a_marker_not_an_error(completed_intake, api_as, caseworker_alice):
    with override_settings(FIELD_ENCRYPTION_KEYS=[encryption.generate_key_entry("k-other")]):
        response = api_as(caseworker_alice).get(f"/api/workflow/tasks/{completed_intake.pk}")
        assert response.status_code == 200
        assert response.json()["variables"]["intake_notes"] == encryption.UNREADABLE_MARKER
        page = Client()
        page.force_login(caseworker_alice)
        assert page.get(f"/tasks/{completed_intake.pk}/").status_code == 200


def test_a_start_variable_named_like_a_sensitive_field_is_sealed(supervisor_sam, caseworker_alice):
    definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())
    instance = process_start(
        user=caseworker_alice,
        process_key="onecms_case_handling",
        business_key="CASE-START",
        variables={"intake_notes": NOTES, "title": "clear"},
    )
    stored = raw_text(
        "SELECT variables::text || engine_state::text FROM flowable.process_instances WHERE process_instance_id = %s",
        [instance.pk],
    )
    assert "Jordan" not in stored and "clear" in stored


def test_a_delegate_resolving_with_a_sensitive_value_stores_it_sealed(
    make_task, caseworker_alice, supervisor_sam, legal_reviewer_carol
):
    task = make_task("triage", form_fields=[{"id": "opinion", "label": "Opinion", "type": "text", "sensitive": True}])
    task_claim(user=caseworker_alice, task_id=task.pk)
    task_delegate(user=supervisor_sam, task_id=task.pk, delegate="carol")
    task_resolve(user=legal_reviewer_carol, task_id=task.pk, variables={"opinion": NOTES, "other": "clear"})
    variables = WorkflowTask.objects.get(pk=task.pk).variables
    assert encryption.is_sealed(variables["opinion"]) and variables["other"] == "clear"
    assert encryption.open_sealed(variables["opinion"]) == NOTES
    page = Client()
    page.force_login(caseworker_alice)
    assert NOTES in page.get(f"/tasks/{task.pk}/").content.decode()  # back with alice, in her form


def test_a_planted_ciphertext_in_variables_is_refused_naming_the_field(
    completed_intake, instance, api_as, caseworker_alice
):
    stolen = WorkflowTask.objects.get(pk=completed_intake.pk).variables["intake_notes"]  # as read from a dump
    task = WorkflowTask.objects.get(process_instance=instance, status="OPEN")
    client = api_as(caseworker_alice)
    client.post(f"/api/workflow/tasks/{task.pk}/claim")
    response = client.post(
        f"/api/workflow/tasks/{task.pk}/complete",
        {"variables": {"allegation_type": "FRAUD", "note": {"copied": stolen}}},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["note.copied"]
    start = client.post(
        "/api/workflow/processes/",
        {"process_key": "onecms_case_handling", "business_key": "CASE-PLANT", "variables": {"title": stolen}},
        format="json",
    )
    assert start.status_code == 400 and list(start.json()["fields"]) == ["title"]
