"""Cases walk their BPMN workflow end to end through the API; every hop lands in the routing history."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from cases.models import Case
from tasks.bpmn.workflows import definition_deploy, process_fire_due_timers
from tasks.models import ProcessInstance, WorkflowTask

pytestmark = pytest.mark.django_db
DEMO_BPMN = Path(__file__).resolve().parents[2] / "tasks" / "bpmn" / "onecms_case_handling.bpmn"


@pytest.fixture
def deployed(supervisor_sam):
    return definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())


@pytest.fixture
def clients(api_as, caseworker_alice, fraud_investigator_bob, legal_reviewer_carol, supervisor_sam):
    return {
        "alice": api_as(caseworker_alice),
        "bob": api_as(fraud_investigator_bob),
        "carol": api_as(legal_reviewer_carol),
        "supervisor": api_as(supervisor_sam),
    }


def open_case(client, allegation_type):
    response = client.post(
        "/api/cases/",
        {
            "title": f"{allegation_type} report",
            "allegations": [{"type": allegation_type, "description": "reported by a colleague", "date": "2026-11-01"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def current_task(case_id):
    return WorkflowTask.objects.get(process_instance__case_mapping__case_id=case_id, status__in=["OPEN", "CLAIMED"])


def work(client, case_id, queue, variables):
    task = current_task(case_id)
    assert task.queue_id == queue
    assert client.post(f"/api/workflow/tasks/{task.pk}/claim").status_code == 200
    response = client.post(f"/api/workflow/tasks/{task.pk}/complete", {"variables": variables}, format="json")
    assert response.status_code == 200, response.content


INTAKE = {"received_on": "2026-11-02", "received_via": "EMAIL"}


def hops(client, case_id):
    body = client.get(f"/api/cases/{case_id}").json()
    return [(h["from_queue"], h["to_queue"]) for h in body["workflows"][0]["routing_history"]]


def test_fraud_case_walks_through_investigation_and_legal_review(deployed, clients):
    case = open_case(clients["alice"], "FRAUD")
    assert case["case_number"].startswith(f"CASE-{timezone.now().year}-")
    work(clients["alice"], case["id"], "intake", INTAKE)
    work(clients["alice"], case["id"], "triage", {"allegation_type": "FRAUD"})
    work(clients["bob"], case["id"], "fraud-investigation", {"recommend_action": True, "findings": "invoices forged"})
    work(clients["carol"], case["id"], "legal-review", {"legal_opinion": "refer"})
    work(clients["alice"], case["id"], "triage", {"closure_reason": "REFERRED"})
    assert Case.objects.get(pk=case["id"]).status == "CLOSED"
    assert ProcessInstance.objects.get(case_mapping__case_id=case["id"]).status == "COMPLETED"
    assert hops(clients["alice"], case["id"]) == [
        (None, "intake"),
        ("intake", "triage"),
        ("triage", "fraud-investigation"),
        ("fraud-investigation", "legal-review"),
        ("legal-review", "triage"),
    ]


def test_misconduct_case_without_action_skips_legal_review(deployed, clients):
    case = open_case(clients["alice"], "MISCONDUCT")
    work(clients["alice"], case["id"], "intake", INTAKE)
    work(clients["alice"], case["id"], "triage", {"allegation_type": "MISCONDUCT"})
    work(clients["alice"], case["id"], "triage", {"recommend_action": False})
    work(clients["alice"], case["id"], "triage", {"closure_reason": "NO_CASE_TO_ANSWER"})
    assert Case.objects.get(pk=case["id"]).status == "CLOSED"
    assert hops(clients["alice"], case["id"]) == [
        (None, "intake"),
        ("intake", "triage"),
        ("triage", "triage"),
        ("triage", "triage"),
    ]


def test_triage_form_refuses_an_unknown_allegation_type(deployed, clients):
    case = open_case(clients["alice"], "MISCONDUCT")
    work(clients["alice"], case["id"], "intake", INTAKE)
    task = current_task(case["id"])
    clients["alice"].post(f"/api/workflow/tasks/{task.pk}/claim")
    response = clients["alice"].post(
        f"/api/workflow/tasks/{task.pk}/complete", {"variables": {"allegation_type": "THEFT"}}, format="json"
    )
    assert response.status_code == 400 and "allegation_type" in response.json()["fields"]
    assert current_task(case["id"]).pk == task.pk


def test_boundary_timer_escalates_triage_after_48_hours(deployed, clients):
    case = open_case(clients["alice"], "FRAUD")
    work(clients["alice"], case["id"], "intake", INTAKE)
    triage = current_task(case["id"])
    assert process_fire_due_timers(now=timezone.now() + timedelta(hours=47)) == 0
    assert process_fire_due_timers(now=timezone.now() + timedelta(hours=49)) == 1
    triage.refresh_from_db()
    assert triage.status == "ESCALATED"
    escalated = current_task(case["id"])
    assert (escalated.queue_id, escalated.name) == ("escalations", "Escalated triage")


def test_case_outside_my_queues_is_404(deployed, clients):
    case = open_case(clients["alice"], "FRAUD")
    assert clients["bob"].get(f"/api/cases/{case['id']}").status_code == 404
    assert clients["alice"].get(f"/api/cases/{case['id']}").status_code == 200


@pytest.mark.parametrize(
    "allegations,field",
    [
        ([], "allegations"),
        ([{"type": "THEFT", "description": "x"}], "allegations[0].type"),
        ([{"type": "FRAUD", "description": ""}], "allegations[0].description"),
        ([{"type": "FRAUD", "description": "x", "date": "2999-01-01"}], "allegations[0].date"),
        ([{"type": "FRAUD", "description": ["not", "text"]}], "allegations[0].description"),
        ([{"type": ["FRAUD"], "description": "x"}], "allegations[0].type"),
    ],
)
def test_bad_allegations_are_400_naming_the_field(deployed, clients, allegations, field):
    response = clients["alice"].post("/api/cases/", {"title": "t", "allegations": allegations}, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Case.objects.exists()


def test_redeploy_gives_version_2_and_running_instances_finish_on_version_1(deployed, clients, supervisor_sam):
    case = open_case(clients["alice"], "MISCONDUCT")
    v2 = definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())
    assert (deployed.version, v2.version) == (1, 2)
    work(clients["alice"], case["id"], "intake", INTAKE)
    assert ProcessInstance.objects.get(case_mapping__case_id=case["id"]).definition_id == deployed.pk
    newer = open_case(clients["alice"], "MISCONDUCT")
    assert ProcessInstance.objects.get(case_mapping__case_id=newer["id"]).definition_id == v2.pk


@pytest.mark.parametrize(
    "xml,expected",
    [
        ("not xml at all", "XML"),
        ("<root/>", "BPMN"),
    ],
)
def test_bad_bpmn_is_400_naming_what_is_wrong(clients, xml, expected):
    response = clients["supervisor"].post("/api/workflow/definitions/", {"bpmn_xml": xml}, format="json")
    assert response.status_code == 400
    assert expected in response.json()["detail"]


def test_deploy_needs_the_deploy_capability(clients):
    response = clients["alice"].post("/api/workflow/definitions/", {"bpmn_xml": DEMO_BPMN.read_text()}, format="json")
    assert response.status_code == 403


def test_conflict_of_interest_case_takes_the_review_path_and_closes(deployed, clients):
    case = open_case(clients["alice"], "CONFLICT_OF_INTEREST")
    work(clients["alice"], case["id"], "intake", INTAKE)
    work(clients["alice"], case["id"], "triage", {"allegation_type": "CONFLICT_OF_INTEREST"})
    review = current_task(case["id"])
    assert review.task_definition_key == "misconduct_review"
    work(clients["alice"], case["id"], "triage", {"recommend_action": True})
    work(clients["carol"], case["id"], "legal-review", {"legal_opinion": "declare the interest"})
    work(clients["alice"], case["id"], "triage", {"closure_reason": "ACTION_TAKEN"})
    assert Case.objects.get(pk=case["id"]).status == "CLOSED"
    assert hops(clients["alice"], case["id"])[-2:] == [("triage", "legal-review"), ("legal-review", "triage")]
