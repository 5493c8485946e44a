"""An archived task stays readable through the API, with its history, under the same queue check as a live one."""

import pytest

from entitlements.models import SecurityEvent

pytestmark = pytest.mark.django_db


def test_archived_task_reads_as_it_was(api_as, caseworker_alice, archived_task):
    response = api_as(caseworker_alice).get(f"/api/workflow/tasks/{archived_task.pk}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["name"], body["queue"], body["status"], body["assignee"], body["priority"]) == (
        archived_task.pk,
        "Old intake review",
        "intake",
        "COMPLETED",
        "alice",
        70,
    )


def test_archived_task_history_comes_from_the_archive(api_as, caseworker_alice, archived_task):
    response = api_as(caseworker_alice).get(f"/api/workflow/tasks/{archived_task.pk}/history")

    assert response.status_code == 200, response.content
    events = response.json()
    assert [e["event_type"] for e in events][-2:] == ["CLAIMED", "COMPLETED"]
    assert events[-1]["actor"] == "alice" and events[-1]["comment"] == "done long ago"


def test_archived_task_outside_the_callers_queues_is_404_and_audited(api_as, fraud_investigator_bob, archived_task):
    client = api_as(fraud_investigator_bob)

    assert client.get(f"/api/workflow/tasks/{archived_task.pk}").status_code == 404
    assert client.get(f"/api/workflow/tasks/{archived_task.pk}/history").status_code == 404
    denial = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED").latest("event_id")
    assert denial.details.get("task_id") == archived_task.pk and denial.details.get("archived") is True


def test_archived_task_cannot_be_acted_on(api_as, caseworker_alice, archived_task):
    response = api_as(caseworker_alice).post(f"/api/workflow/tasks/{archived_task.pk}/claim")

    assert response.status_code == 404
