"""The task lifecycle through the API: create, claim, release, complete, reassign, delegate, escalate, history."""

import pytest

from queues.models import WorkflowQueue
from tasks.models import TaskHistory, WorkflowTask
from tasks.sla.maintenance import refresh_dashboards

pytestmark = pytest.mark.django_db


def load(queue_name):
    return WorkflowQueue.objects.get(queue_name=queue_name).current_load


def claimed_count(queue_name):
    return WorkflowTask.objects.filter(queue_id=queue_name, status="CLAIMED").count()


def test_create_returns_201_with_the_task_and_a_due_date_from_the_queue_sla(api_as, caseworker_alice):
    response = api_as(caseworker_alice).post(
        "/api/workflow/tasks/", {"queue": "intake", "name": "Call the reporter", "priority": 70}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["queue"], body["status"], body["priority"]) == ("intake", "OPEN", 70)
    assert body["due_date"]
    assert TaskHistory.objects.filter(task_id=body["id"], event_type="CREATED").exists()


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"name": "x"}, "queue"),
        ({"queue": "intake"}, "name"),
        ({"queue": "intake", "name": "x", "priority": 101}, "priority"),
        ({"queue": "intake", "name": "x", "priority": "high"}, "priority"),
        ({"queue": "intake", "name": "x", "due_date": "yesterday"}, "due_date"),
        ({"queue": "intake", "name": "x", "variables": [1, 2]}, "variables"),
        ({"queue": "no-such-queue", "name": "x"}, "queue"),
    ],
)
def test_bad_create_input_is_400_naming_the_field(api_as, caseworker_alice, payload, field):
    response = api_as(caseworker_alice).post("/api/workflow/tasks/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not WorkflowTask.objects.exists()


def test_non_object_body_is_400_not_500(api_as, caseworker_alice, make_task):
    task = make_task("intake")
    client = api_as(caseworker_alice)
    client.post(f"/api/workflow/tasks/{task.pk}/claim")
    response = client.post(f"/api/workflow/tasks/{task.pk}/complete", [1, 2], format="json")
    assert response.status_code == 400


def test_claim_is_idempotent_for_the_holder_and_409_for_others(
    api_as, caseworker_alice, legal_reviewer_carol, make_task
):
    task = make_task("triage")
    alice = api_as(caseworker_alice)
    assert alice.post(f"/api/workflow/tasks/{task.pk}/claim").json()["assignee"] == "alice"
    assert alice.post(f"/api/workflow/tasks/{task.pk}/claim").status_code == 200
    response = api_as(legal_reviewer_carol).post(f"/api/workflow/tasks/{task.pk}/claim")
    assert response.status_code == 409
    assert response.json()["code"] == "task_claimed"
    assert load("triage") == 1 == claimed_count("triage")


def test_release_returns_the_task_to_the_queue(api_as, caseworker_alice, make_task):
    task = make_task("intake")
    client = api_as(caseworker_alice)
    client.post(f"/api/workflow/tasks/{task.pk}/claim")
    response = client.post(f"/api/workflow/tasks/{task.pk}/release", {"comment": "wrong queue"}, format="json")
    assert response.json()["status"] == "OPEN" and response.json()["assignee"] is None
    assert load("intake") == 0


def test_complete_only_by_the_holder(api_as, caseworker_alice, legal_reviewer_carol, make_task):
    task = make_task("triage")
    api_as(caseworker_alice).post(f"/api/workflow/tasks/{task.pk}/claim")
    response = api_as(legal_reviewer_carol).post(f"/api/workflow/tasks/{task.pk}/complete", {}, format="json")
    assert response.status_code == 409
    done = api_as(caseworker_alice).post(
        f"/api/workflow/tasks/{task.pk}/complete", {"variables": {"note": "ok"}, "comment": "done"}, format="json"
    )
    assert done.status_code == 200 and done.json()["status"] == "COMPLETED"
    assert load("triage") == 0
    again = api_as(caseworker_alice).post(f"/api/workflow/tasks/{task.pk}/complete", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "task_completed"


def test_complete_validates_declared_form_fields(api_as, caseworker_alice, make_task):
    fields = [
        {"id": "allegation_type", "label": "Type", "type": "enum", "required": True, "values": ["FRAUD", "MISCONDUCT"]}
    ]
    task = make_task("intake", form_fields=fields)
    client = api_as(caseworker_alice)
    client.post(f"/api/workflow/tasks/{task.pk}/claim")
    response = client.post(
        f"/api/workflow/tasks/{task.pk}/complete", {"variables": {"allegation_type": "THEFT"}}, format="json"
    )
    assert response.status_code == 400
    assert "allegation_type" in response.json()["fields"]
    task.refresh_from_db()
    assert task.status == "CLAIMED"


def test_supervisor_reassigns_to_someone_who_can_work_the_queue(api_as, supervisor_sam, make_task):
    task = make_task("triage")
    client = api_as(supervisor_sam)
    response = client.post(f"/api/workflow/tasks/{task.pk}/reassign", {"assignee": "carol"}, format="json")
    assert response.status_code == 200 and response.json()["assignee"] == "carol"
    assert load("triage") == 1
    refused = client.post(f"/api/workflow/tasks/{task.pk}/reassign", {"assignee": "bob"}, format="json")
    assert refused.status_code == 400 and "assignee" in refused.json()["fields"]


def test_skill_based_queue_gives_tasks_only_to_users_with_the_skills(
    api_as, supervisor_sam, caseworker_alice, make_task
):
    from entitlements.models import WorkflowRole
    from entitlements.services import role_assignment_grant

    role_assignment_grant(user=caseworker_alice, role=WorkflowRole.objects.get(role_code="fraud-investigator"))
    task = make_task("fraud-investigation", required_skills=["fraud"])
    response = api_as(caseworker_alice).post(f"/api/workflow/tasks/{task.pk}/claim")
    assert response.status_code == 409 and response.json()["code"] == "missing_skills"


def test_delegated_task_returns_to_its_owner_when_resolved(
    api_as, supervisor_sam, caseworker_alice, legal_reviewer_carol, make_task
):
    task = make_task("triage")
    api_as(caseworker_alice).post(f"/api/workflow/tasks/{task.pk}/claim")
    delegated = api_as(supervisor_sam).post(
        f"/api/workflow/tasks/{task.pk}/delegate", {"delegate": "carol"}, format="json"
    )
    assert delegated.json()["assignee"] == "carol" and delegated.json()["owner"] == "alice"
    carol = api_as(legal_reviewer_carol)
    assert carol.post(f"/api/workflow/tasks/{task.pk}/complete", {}, format="json").status_code == 409
    resolved = carol.post(f"/api/workflow/tasks/{task.pk}/resolve", {"variables": {"opinion": "fine"}}, format="json")
    assert resolved.json()["assignee"] == "alice" and resolved.json()["delegation_state"] == "RESOLVED"
    assert (
        api_as(caseworker_alice).post(f"/api/workflow/tasks/{task.pk}/complete", {}, format="json").status_code == 200
    )


def test_escalate_raises_priority_moves_queue_and_counts_levels(api_as, supervisor_sam, caseworker_alice, make_task):
    task = make_task("triage", priority=40)
    api_as(caseworker_alice).post(f"/api/workflow/tasks/{task.pk}/claim")
    response = api_as(supervisor_sam).post(
        f"/api/workflow/tasks/{task.pk}/escalate",
        {"priority": 90, "queue": "escalations", "reason": "stuck"},
        format="json",
    )
    body = response.json()
    assert (body["priority"], body["queue"], body["status"], body["escalation_level"]) == (90, "escalations", "OPEN", 1)
    assert load("triage") == 0
    lower = api_as(supervisor_sam).post(f"/api/workflow/tasks/{task.pk}/escalate", {"priority": 10}, format="json")
    assert lower.status_code == 400


def test_history_lists_every_transition_with_actor_and_values(api_as, caseworker_alice, make_task):
    task = make_task("intake")
    client = api_as(caseworker_alice)
    client.post(f"/api/workflow/tasks/{task.pk}/claim")
    client.post(f"/api/workflow/tasks/{task.pk}/release", {}, format="json")
    client.post(f"/api/workflow/tasks/{task.pk}/claim")
    client.post(f"/api/workflow/tasks/{task.pk}/complete", {"comment": "done"}, format="json")
    events = client.get(f"/api/workflow/tasks/{task.pk}/history").json()
    assert [e["event_type"] for e in events] == ["CREATED", "CLAIMED", "RELEASED", "CLAIMED", "COMPLETED"]
    assert events[1]["actor"] == "alice"
    assert events[1]["old_values"]["status"] == "OPEN" and events[1]["new_values"]["status"] == "CLAIMED"


def test_list_filters_and_orders(api_as, caseworker_alice, make_task):
    make_task("intake", name="low", priority=10)
    make_task("intake", name="high", priority=90)
    make_task("triage", name="other", priority=50)
    client = api_as(caseworker_alice)
    body = client.get("/api/workflow/tasks/", {"queue": "intake", "ordering": "-priority"}).json()
    assert [t["name"] for t in body["results"]] == ["high", "low"]
    assert [t["name"] for t in client.get("/api/workflow/tasks/", {"min_priority": 60}).json()["results"]] == ["high"]
    assert client.get("/api/workflow/tasks/", {"assignee": "me"}).json()["count"] == 0
    assert client.get("/api/workflow/tasks/", {"status": "BOGUS"}).status_code == 400


def test_list_is_a_bounded_number_of_queries(api_as, caseworker_alice, make_task, django_assert_max_num_queries):
    for n in range(30):
        make_task("intake", name=f"t{n}")
    client = api_as(caseworker_alice)
    # The token and its first use, the caller's queues, the page's rows with their users and forecasts joined (no
    # count: it fits on one page).
    with django_assert_max_num_queries(4):
        assert client.get("/api/workflow/tasks/").json()["count"] == 30


def test_list_sorts_narrow_rows_of_named_queues(api_as, caseworker_alice, make_task):
    """The page query names the queues (the planner can count their tasks), joins users only to the page's rows
    (fetched by the keys its probes chose) and asks for no DISTINCT (which would compare whole rows of every task in
    scope)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_task("intake", name="listed")
    make_task("legal-review", name="not listed")
    client = api_as(caseworker_alice)
    with CaptureQueriesContext(connection) as captured:
        body = client.get("/api/workflow/tasks/", {"status": ["OPEN", "CLAIMED"]}).json()
    assert [t["name"] for t in body["results"]] == ["listed"]
    page = [q["sql"] for q in captured.captured_queries if "LIMIT" in q["sql"] and "workflow_tasks" in q["sql"]]
    assert len(page) == 1, captured.captured_queries
    assert "queue_ids_for" not in page[0] and "'intake'" in page[0]
    # One index probe per queue and status, merged (core/pagination.py), choose the page's keys: no users joined
    # there, no DISTINCT.
    keys = page[0].split(" IN (", 1)[1]
    assert "CROSS JOIN LATERAL" in keys and "unnest(" in keys
    assert "DISTINCT" not in page[0] and "users" not in keys


def test_queue_endpoint_shows_counts_for_viewable_queues(api_as, caseworker_alice, make_task):
    make_task("intake")
    task = make_task("intake")
    client = api_as(caseworker_alice)
    client.post(f"/api/workflow/tasks/{task.pk}/claim")
    refresh_dashboards()  # the counts are the dashboards' (as of their refresh): no page view counts the tasks
    queues = {q["queue_name"]: q for q in client.get("/api/queues/").json()}
    assert set(queues) == {"intake", "triage"}
    assert (queues["intake"]["open"], queues["intake"]["claimed"], queues["intake"]["current_load"]) == (1, 1, 1)
    assert queues["intake"]["oldest_open_age_seconds"] >= 0
    assert queues["intake"]["capabilities"] == ["view", "work"]
    assert queues["intake"]["figures_as_of"] is not None


def test_queue_endpoint_counts_no_tasks_and_says_as_of_when_it_counted(
    api_as, caseworker_alice, make_task, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    refresh_dashboards()
    make_task("intake")  # after the refresh: not counted until the next one
    client = api_as(caseworker_alice)
    with CaptureQueriesContext(connection) as captured:
        queues = {q["queue_name"]: q for q in client.get("/api/queues/").json()}
    assert queues["intake"]["open"] == 0 and queues["intake"]["figures_as_of"] is not None
    assert not [q["sql"] for q in captured.captured_queries if "workflow_tasks" in q["sql"]]
