"""The supervisor can browse every model of the system in admin."""

import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db

OUR_APPS = {"entitlements", "queues", "tasks", "cases"}


@pytest.fixture
def supervisor_client(client, supervisor_sam):
    client.force_login(supervisor_sam)
    return client


def our_models():
    return sorted(
        (model._meta.app_label, model._meta.model_name)
        for model in admin.site._registry
        if model._meta.app_label in OUR_APPS
    )


def test_every_model_of_every_app_is_in_admin():
    registered = {app for app, _ in our_models()}
    assert registered == OUR_APPS
    assert len(our_models()) >= 14


@pytest.mark.parametrize("app_label,model_name", our_models())
def test_supervisor_opens_each_changelist(supervisor_client, app_label, model_name):
    response = supervisor_client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    assert response.status_code == 200


def test_changelists_show_the_demo_organisation(supervisor_client):
    body = supervisor_client.get(reverse("admin:queues_workflowqueue_changelist")).content.decode()
    for name in ["intake", "triage", "fraud-investigation", "legal-review", "escalations"]:
        assert name in body
    body = supervisor_client.get(reverse("admin:entitlements_department_changelist")).content.decode()
    for name in ["Investigations", "Fraud", "Misconduct", "Legal"]:
        assert name in body


def test_caseworker_cannot_reach_admin(client, caseworker_alice):
    client.force_login(caseworker_alice)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_user_page_shows_effective_queues_now(supervisor_client, caseworker_alice):
    body = supervisor_client.get(reverse("admin:entitlements_user_change", args=[caseworker_alice.pk])).content.decode()
    assert "<strong>intake</strong>: view, work" in body


def test_queue_page_shows_who_can_work_it_now(supervisor_client):
    from queues.models import WorkflowQueue

    triage = WorkflowQueue.objects.get(queue_name="triage")
    body = supervisor_client.get(reverse("admin:queues_workflowqueue_change", args=[triage.pk])).content.decode()
    assert "alice, carol" in body


def test_grant_role_with_a_window_in_one_form(supervisor_client, fraud_investigator_bob):
    from entitlements.access import queue_names_for
    from entitlements.models import SecurityEvent, WorkflowRole

    role = WorkflowRole.objects.get(role_code="legal-reviewer")
    response = supervisor_client.post(
        reverse("admin:entitlements_userroleassignment_add"),
        {
            "user": fraud_investigator_bob.pk,
            "role": role.pk,
            "valid_from_0": "2020-01-01",
            "valid_from_1": "00:00:00",
            "valid_until_0": "2099-01-01",
            "valid_until_1": "00:00:00",
            "is_temporary_escalation": "on",
            "reason": "Covering legal review",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert "legal-review" in queue_names_for(user=fraud_investigator_bob, capability="work")
    event = SecurityEvent.objects.filter(event_type="ROLE_GRANTED").latest("event_id")
    assert event.actor_username == "supervisor" and event.details["role"] == "legal-reviewer"


def test_temporary_escalation_without_reason_is_refused_beside_the_field(supervisor_client, fraud_investigator_bob):
    from entitlements.models import WorkflowRole

    role = WorkflowRole.objects.get(role_code="legal-reviewer")
    response = supervisor_client.post(
        reverse("admin:entitlements_userroleassignment_add"),
        {
            "user": fraud_investigator_bob.pk,
            "role": role.pk,
            "valid_from_0": "2020-01-01",
            "valid_from_1": "00:00:00",
            "is_temporary_escalation": "on",
            "reason": "",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "A temporary escalation must end." in body and "A temporary escalation needs a reason." in body


def test_revoke_action_ends_the_assignment(supervisor_client, caseworker_alice):
    from entitlements.access import queue_names_for
    from entitlements.models import UserRoleAssignment

    assignment = UserRoleAssignment.objects.get(user=caseworker_alice, role__role_code="intake-caseworker")
    supervisor_client.post(
        reverse("admin:entitlements_userroleassignment_changelist"),
        {
            "action": "revoke_now",
            "_selected_action": [assignment.pk],
        },
    )
    assert queue_names_for(user=caseworker_alice, capability="work") == ["triage"]


def test_supervisor_deploys_a_bpmn_file_from_admin(supervisor_client):
    from pathlib import Path

    from django.core.files.uploadedfile import SimpleUploadedFile

    from tasks.models import WorkflowDefinition

    model = Path(__file__).resolve().parents[2] / "tasks" / "bpmn" / "onecms_case_handling.bpmn"
    upload = SimpleUploadedFile("case.bpmn", model.read_bytes(), content_type="application/xml")
    response = supervisor_client.post(
        reverse("admin:tasks_workflowdefinition_add"), {"bpmn_file": upload, "sla_config": "{}"}
    )
    assert response.status_code == 302, response.content.decode()[:1500]
    assert WorkflowDefinition.objects.filter(process_key="onecms_case_handling").exists()


def test_bad_bpmn_upload_shows_the_error_beside_the_field(supervisor_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tasks.models import WorkflowDefinition

    upload = SimpleUploadedFile("bad.bpmn", b"not xml", content_type="application/xml")
    response = supervisor_client.post(
        reverse("admin:tasks_workflowdefinition_add"), {"bpmn_file": upload, "sla_config": "{}"}
    )
    assert response.status_code == 200
    assert "not well-formed XML" in response.content.decode()
    assert not WorkflowDefinition.objects.exists()


def test_supervisor_sees_the_record_of_each_job_run(supervisor_client):
    response = supervisor_client.get(reverse("admin:django_celery_results_taskresult_changelist"))
    assert response.status_code == 200
