"""The case page: the case, its current tasks and its routing history; 404 outside my queues; text is escaped."""

import pytest

from entitlements.models import SecurityEvent
from tasks.models import WorkflowTask

from .conftest import open_fraud_case

pytestmark = pytest.mark.django_db


def test_case_page_shows_allegations_current_task_and_routing_timeline(
    page_as, caseworker_alice, deployed_demo_workflow
):
    case = open_fraud_case(caseworker_alice)
    task = WorkflowTask.objects.get(process_instance__case_mapping__case=case)
    body = page_as(caseworker_alice).get(f"/cases/{case.pk}/").content.decode()
    assert case.case_number in body and "Invoices forged at the north depot" in body
    assert "Supplier invoices were altered before payment." in body
    assert f'href="/tasks/{task.pk}/"' in body and "Intake review" in body
    assert "Opened in intake" in body and "opened: Intake review" in body


def test_task_page_shows_its_case_summary(page_as, caseworker_alice, deployed_demo_workflow):
    case = open_fraud_case(caseworker_alice)
    task = WorkflowTask.objects.get(process_instance__case_mapping__case=case)
    body = page_as(caseworker_alice).get(f"/tasks/{task.pk}/").content.decode()
    assert f'href="/cases/{case.pk}/"' in body and "Supplier invoices were altered" in body


def test_a_title_with_markup_is_shown_as_text(page_as, caseworker_alice, deployed_demo_workflow):
    case = open_fraud_case(caseworker_alice, title="<script>alert(1)</script>")
    body = page_as(caseworker_alice).get(f"/cases/{case.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_a_case_outside_my_queues_is_404_and_audited(
    page_as, caseworker_alice, fraud_investigator_bob, deployed_demo_workflow
):
    case = open_fraud_case(caseworker_alice)
    response = page_as(fraud_investigator_bob).get(f"/cases/{case.pk}/")
    assert response.status_code == 404 and case.case_number not in response.content.decode()
    event = (
        SecurityEvent.objects.filter(event_type="PERMISSION_DENIED", actor=fraud_investigator_bob)
        .order_by("-event_id")
        .first()
    )
    assert event.details["case_id"] == case.pk and event.path == f"/cases/{case.pk}/"


def test_current_tasks_in_queues_i_cannot_open_are_not_links(page_as, caseworker_alice, deployed_demo_workflow):
    from tasks.services import task_claim, task_complete

    case = open_fraud_case(caseworker_alice)
    for variables in ({"received_on": "2026-01-02", "received_via": "EMAIL"}, {"allegation_type": "FRAUD"}):
        task = WorkflowTask.objects.get(process_instance__case_mapping__case=case, status="OPEN")
        task_claim(user=caseworker_alice, task_id=task.pk)
        task_complete(user=caseworker_alice, task_id=task.pk, variables=variables)
    fraud = WorkflowTask.objects.get(process_instance__case_mapping__case=case, status="OPEN")
    assert fraud.queue_id == "fraud-investigation"
    body = page_as(caseworker_alice).get(f"/cases/{case.pk}/").content.decode()
    assert "Fraud investigation" in body and f'href="/tasks/{fraud.pk}/"' not in body
    assert "triage → fraud-investigation" in body
