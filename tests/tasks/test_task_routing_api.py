"""GET /api/workflow/tasks/{id}/routing: why the task went where it went, for callers who may see the task; 404
for everyone else."""

import pytest

from entitlements.models import User
from queues.models import WorkflowQueue
from tasks.services import task_delegate, task_reassign

pytestmark = pytest.mark.django_db


@pytest.fixture
def claimed_by_claim_next(api_as, caseworker_alice, make_task):
    """An intake task alice took with claim-next, passing over triage, which is at capacity."""
    WorkflowQueue.objects.filter(queue_name="triage").update(max_capacity=0)
    make_task("triage", name="triage first", priority=90)
    task = make_task("intake", name="Intake review", priority=40)
    response = api_as(caseworker_alice).post("/api/workflow/tasks/claim/next")
    assert response.json()["id"] == task.pk
    return task


def routing_url(task):
    return f"/api/workflow/tasks/{task.pk}/routing"


def test_routing_gives_the_latest_decision_in_words_and_as_recorded(api_as, caseworker_alice, claimed_by_claim_next):
    response = api_as(caseworker_alice).get(routing_url(claimed_by_claim_next))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["queue"], body["status"], body["assignee"]) == (
        claimed_by_claim_next.pk,
        "intake",
        "CLAIMED",
        "alice",
    )
    latest = body["latest"]
    assert (latest["kind"], latest["event_type"], latest["actor"]) == ("claim_next", "CLAIMED", "alice")
    assert latest["headline"] == (
        "alice claimed it with claim-next from intake: the best-ranked of alice's queues that could give a task; "
        "its best open task (priority 40)."
    )
    assert "Queue triage (best open task priority 90): at capacity (0/0)." in latest["reasons"]
    assert latest["routing"]["queues"][0] == {
        "queue": "triage",
        "head_priority": 90,
        "reason": "at_capacity",
        "load": 0,
        "capacity": 0,
    }
    assert body["decisions"] == [latest]


@pytest.fixture
def intake_peer(demo_org):
    """Another intake caseworker."""
    from entitlements.models import WorkflowRole
    from entitlements.services import role_assignment_grant
    from tests.factories import UserFactory

    peer = UserFactory(username="irene")
    role_assignment_grant(user=peer, role=WorkflowRole.objects.get(role_code="intake-caseworker"))
    return peer


def test_routing_lists_each_decision_oldest_first(api_as, supervisor_sam, intake_peer, claimed_by_claim_next):
    task = claimed_by_claim_next
    task_reassign(user=supervisor_sam, task_id=task.pk, assignee="irene", expected_assignee="alice")
    task_delegate(user=supervisor_sam, task_id=task.pk, delegate="alice")

    body = api_as(supervisor_sam).get(routing_url(task)).json()

    assert [d["kind"] for d in body["decisions"]] == ["claim_next", "reassign", "delegate"]
    assert body["decisions"][1]["headline"] == "Assigned to irene by supervisor supervisor (it was with alice)."
    assert body["latest"]["headline"] == (
        "Delegated to alice by supervisor supervisor; it goes back to irene once resolved."
    )


def test_routing_of_a_task_outside_the_callers_queues_is_404(api_as, fraud_investigator_bob, claimed_by_claim_next):
    response = api_as(fraud_investigator_bob).get(routing_url(claimed_by_claim_next))

    assert response.status_code == 404
    assert response.json()["code"] == "task_not_found"


def test_routing_of_a_task_for_a_user_with_no_queue_at_all_is_404(api_as, claimed_by_claim_next):
    nobody = User.objects.create_user(username="no-queues", password="x")

    assert api_as(nobody).get(routing_url(claimed_by_claim_next)).status_code == 404


def test_routing_needs_authentication(api_client, claimed_by_claim_next):
    assert api_client.get(routing_url(claimed_by_claim_next)).status_code == 401


def test_routing_of_an_archived_task_is_read_from_the_archive(api_as, caseworker_alice, archived_task):
    body = api_as(caseworker_alice).get(routing_url(archived_task)).json()

    assert body["latest"]["kind"] == "claim"
    assert body["latest"]["headline"] == "alice claimed it from intake."


def test_routing_is_in_the_openapi_schema(api_as, caseworker_alice):
    import yaml

    schema = yaml.safe_load(api_as(caseworker_alice).get("/api/schema/").content)

    operation = schema["paths"]["/api/workflow/tasks/{id}/routing/"]["get"]
    assert set(operation["responses"]) == {"200", "401", "404"}
    routing = schema["components"]["schemas"]["TaskRouting"]
    assert {"latest", "decisions", "assignee"} <= set(routing["properties"])
