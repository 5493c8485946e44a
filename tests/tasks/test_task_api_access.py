"""A task outside the caller's queues cannot be listed, seen, claimed or completed: it is 404, and audited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from entitlements.models import SecurityEvent, UserRoleAssignment

pytestmark = pytest.mark.django_db


@pytest.fixture
def intake_task(make_task):
    return make_task("intake", name="Intake review")


def test_user_without_role_on_queue_does_not_list_its_tasks(api_as, fraud_investigator_bob, intake_task):
    response = api_as(fraud_investigator_bob).get("/api/workflow/tasks/")
    assert response.status_code == 200
    assert intake_task.pk not in [t["id"] for t in response.json()["results"]]


def test_user_with_no_queue_at_all_lists_nothing(api_as, intake_task, caseworker_alice):
    """An empty scope is an empty page (the list's queue names are literals: none means no task query at all),
    and a listed task still names its assignee (users are fetched after the page)."""
    from entitlements.models import User

    nobody = User.objects.create_user(username="no-queues", password="x")
    response = api_as(nobody).get("/api/workflow/tasks/")
    assert response.status_code == 200
    assert (response.json()["count"], response.json()["results"]) == (0, [])
    alice = api_as(caseworker_alice)
    assert alice.post(f"/api/workflow/tasks/{intake_task.pk}/claim").status_code == 200
    listed = {t["id"]: t for t in alice.get("/api/workflow/tasks/").json()["results"]}
    assert listed[intake_task.pk]["assignee"] == "alice"


@pytest.mark.parametrize(
    "method,suffix",
    [
        ("get", ""),
        ("get", "/history"),
        ("get", "/routing"),
        ("post", "/claim"),
        ("post", "/complete"),
        ("post", "/release"),
    ],
)
def test_user_without_role_on_queue_gets_404(api_as, fraud_investigator_bob, intake_task, method, suffix):
    client = api_as(fraud_investigator_bob)
    response = getattr(client, method)(f"/api/workflow/tasks/{intake_task.pk}{suffix}", format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "task_not_found"
    event = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED").latest("event_id")
    assert event.actor_username == "bob" and event.details["task_id"] == intake_task.pk


def test_unknown_task_is_the_same_404(api_as, fraud_investigator_bob):
    response = api_as(fraud_investigator_bob).get("/api/workflow/tasks/999999999")
    assert response.status_code == 404
    assert response.json()["code"] == "task_not_found"


def test_expired_assignment_is_denied_at_once(api_as, caseworker_alice, intake_task):
    client = api_as(caseworker_alice)
    assert client.get(f"/api/workflow/tasks/{intake_task.pk}").status_code == 200
    UserRoleAssignment.objects.filter(user=caseworker_alice, role__role_code="intake-caseworker").update(
        valid_from=timezone.now() - timedelta(days=1), valid_until=timezone.now() - timedelta(seconds=1)
    )
    assert client.get(f"/api/workflow/tasks/{intake_task.pk}").status_code == 404
    assert client.post(f"/api/workflow/tasks/{intake_task.pk}/claim").status_code == 404


def test_future_dated_assignment_grants_nothing_yet(api_as, caseworker_alice, intake_task):
    UserRoleAssignment.objects.filter(user=caseworker_alice, role__role_code="intake-caseworker").update(
        valid_from=timezone.now() + timedelta(minutes=1)
    )
    assert api_as(caseworker_alice).post(f"/api/workflow/tasks/{intake_task.pk}/claim").status_code == 404


def test_viewer_who_cannot_work_cannot_claim(api_as, supervisor_sam, intake_task):
    client = api_as(supervisor_sam)
    assert client.get(f"/api/workflow/tasks/{intake_task.pk}").status_code == 200
    assert client.post(f"/api/workflow/tasks/{intake_task.pk}/claim").status_code == 404


def test_caseworker_cannot_reassign_or_escalate(api_as, caseworker_alice, intake_task):
    client = api_as(caseworker_alice)
    assert (
        client.post(f"/api/workflow/tasks/{intake_task.pk}/reassign", {"assignee": "alice"}, format="json").status_code
        == 404
    )
    assert (
        client.post(f"/api/workflow/tasks/{intake_task.pk}/escalate", {"priority": 90}, format="json").status_code
        == 404
    )


def test_creating_a_task_in_a_queue_one_cannot_work_is_refused(api_as, fraud_investigator_bob):
    response = api_as(fraud_investigator_bob).post(
        "/api/workflow/tasks/", {"queue": "intake", "name": "Sneaky"}, format="json"
    )
    assert response.status_code == 400
    assert "queue" in response.json()["fields"]
