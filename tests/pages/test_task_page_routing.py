"""The task page's "Why is this mine?": the latest routing decision of the task, in words."""

import pytest

from queues.models import WorkflowQueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def claimed_by_claim_next(api_as, caseworker_alice, make_task):
    """An intake task alice took with claim-next, passing over triage, which is at capacity."""
    WorkflowQueue.objects.filter(queue_name="triage").update(max_capacity=0)
    make_task("triage", name="triage first", priority=90)
    task = make_task("intake", name="Intake review", priority=40)
    assert api_as(caseworker_alice).post("/api/workflow/tasks/claim/next").json()["id"] == task.pk
    return task


def test_the_task_page_says_why_the_task_is_mine(page_as, caseworker_alice, claimed_by_claim_next):
    body = page_as(caseworker_alice).get(f"/tasks/{claimed_by_claim_next.pk}/").content.decode()

    assert "<summary>Why is this mine?</summary>" in body
    assert "alice claimed it with claim-next from intake" in body
    assert "<li>Queue triage (best open task priority 90): at capacity (0/0).</li>" in body


def test_the_task_page_of_someone_elses_task_says_how_it_was_routed(page_as, supervisor_sam, claimed_by_claim_next):
    body = page_as(supervisor_sam).get(f"/tasks/{claimed_by_claim_next.pk}/").content.decode()

    assert "<summary>How this task was routed</summary>" in body
    assert "Why is this mine?" not in body


def test_the_task_page_outside_the_callers_queues_shows_no_routing(
    page_as, fraud_investigator_bob, claimed_by_claim_next
):
    response = page_as(fraud_investigator_bob).get(f"/tasks/{claimed_by_claim_next.pk}/")

    assert response.status_code == 404
    assert "claim-next" not in response.content.decode()
