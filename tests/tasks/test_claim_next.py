"""Claim-next takes the best OPEN task across the caller's workable queues: priority, then age."""

import pytest
from django.utils import timezone

from queues.models import WorkflowQueue
from tasks.models import WorkflowTask
from tests.roles import analyze

pytestmark = pytest.mark.django_db


def claim_next(client, **params):
    return client.post("/api/workflow/tasks/claim/next" + (f"?{params['query']}" if params.get("query") else ""))


def test_claims_in_priority_then_age_order(api_as, caseworker_alice, make_task):
    older_low = make_task("intake", name="older-low", priority=10)
    high = make_task("triage", name="high", priority=90)
    older_mid = make_task("intake", name="older-mid", priority=50)
    newer_mid = make_task("triage", name="newer-mid", priority=50)
    WorkflowTask.objects.filter(pk=older_mid.pk).update(created_at=timezone.now() - timezone.timedelta(hours=1))
    client = api_as(caseworker_alice)
    names = [claim_next(client).json()["name"] for _ in range(4)]
    assert names == ["high", "older-mid", "newer-mid", "older-low"]
    assert claim_next(client).status_code == 204
    del older_low, high, newer_mid


def test_never_claims_from_a_queue_the_caller_may_not_work(api_as, fraud_investigator_bob, make_task):
    make_task("intake", priority=100)
    response = claim_next(api_as(fraud_investigator_bob))
    assert response.status_code == 204


def test_queue_names_limit_the_claim(api_as, caseworker_alice, make_task):
    make_task("intake", name="intake-task", priority=90)
    make_task("triage", name="triage-task", priority=10)
    client = api_as(caseworker_alice)
    assert claim_next(client, query="queueNames=triage").json()["name"] == "triage-task"
    assert claim_next(client, query="queueNames=legal-review,fraud-investigation").status_code == 204


def test_queue_names_in_body_are_accepted(api_as, caseworker_alice, make_task):
    make_task("intake", name="intake-task", priority=90)
    make_task("triage", name="triage-task", priority=10)
    response = api_as(caseworker_alice).post(
        "/api/workflow/tasks/claim/next", {"queueNames": ["triage"]}, format="json"
    )
    assert response.json()["name"] == "triage-task"


def test_claim_next_passes_over_tasks_needing_skills_the_user_lacks(api_as, fraud_investigator_bob, make_task):
    make_task("fraud-investigation", name="needs-legal", priority=90, required_skills=["legal"])
    make_task("fraud-investigation", name="needs-fraud", priority=10, required_skills=["fraud"])
    assert claim_next(api_as(fraud_investigator_bob)).json()["name"] == "needs-fraud"


def test_claim_next_updates_load_and_history(api_as, caseworker_alice, make_task):
    task = make_task("intake")
    claim_next(api_as(caseworker_alice))
    assert WorkflowQueue.objects.get(queue_name="intake").current_load == 1
    events = list(task.history.values_list("event_type", "actor__username"))
    assert events == [("CREATED", None), ("CLAIMED", "alice")]


def test_queue_at_capacity_gives_nothing_more(api_as, caseworker_alice, make_task):
    WorkflowQueue.objects.filter(queue_name="intake").update(max_capacity=1)
    make_task("intake")
    make_task("intake")
    client = api_as(caseworker_alice)
    assert claim_next(client, query="queueNames=intake").status_code == 200
    assert claim_next(client, query="queueNames=intake").status_code == 204


def test_a_full_queue_is_passed_over_for_the_next_best_queue(api_as, caseworker_alice, make_task):
    WorkflowQueue.objects.filter(queue_name="intake").update(max_capacity=0)
    make_task("intake", name="urgent but full", priority=100)
    make_task("triage", name="routine", priority=1)
    response = claim_next(api_as(caseworker_alice))
    assert response.status_code == 200 and response.json()["name"] == "routine"
    assert claim_next(api_as(caseworker_alice)).status_code == 204
    assert WorkflowQueue.objects.get(queue_name="intake").current_load == 0


def test_claim_next_over_http_is_two_queries_token_and_claim(
    api_as, caseworker_alice, make_task, django_assert_num_queries
):
    from django.utils import timezone

    task = make_task("intake", priority=90)
    client = api_as(caseworker_alice)
    # A token used within the minute: its last use is not written again (the first use of a token adds one UPDATE).
    type(client.issued.token).objects.filter(pk=client.issued.token.pk).update(last_used_at=timezone.now())
    with django_assert_num_queries(2):
        response = claim_next(client)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["status"], body["assignee"], body["queue"]) == (task.pk, "CLAIMED", "alice", "intake")


def test_claim_next_returns_variables_and_form_fields_as_json_values_not_text(api_as, caseworker_alice, make_task):
    variables = {"amount": 1200, "flags": ["urgent"], "subject": {"name": "Doe"}}
    form_fields = [{"id": "approved", "type": "boolean", "label": "Approved?"}]
    make_task("intake", variables=variables, form_fields=form_fields)
    body = claim_next(api_as(caseworker_alice)).json()
    assert body["variables"] == variables
    assert body["form_fields"] == form_fields


def test_the_service_hands_callers_a_task_whose_json_fields_are_decoded(caseworker_alice, make_task):
    from tasks.services import task_claim_next

    make_task("intake", variables={"amount": 5}, form_fields=[{"id": "ok"}])
    task = task_claim_next(user=caseworker_alice)
    assert task.variables == {"amount": 5} and task.form_fields == [{"id": "ok"}]
    assert task.variables["amount"] == 5


def test_claim_next_task_reads_the_queue_row_through_its_index_not_by_scanning_the_queue_table(
    caseworker_alice, make_task
):
    """Every claim writes a new version of a queue row; a scan of the queue table reads all of them, dead or alive."""
    from django.db import connection

    make_task("intake", name="first")

    def queue_table_scans(cursor):
        cursor.execute(
            "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables "
            "WHERE schemaname = 'queues' AND relname = 'workflow_queues'"
        )
        return cursor.fetchone()

    with connection.cursor() as cursor:
        analyze(cursor, "queues.workflow_queues")  # a small table, as the planner sees it after VACUUM
        sequential_before, index_before = queue_table_scans(cursor)
        cursor.execute(
            "SELECT name FROM flowable.claim_next_task(%s, ARRAY['intake'], '{}'::text[])", [caseworker_alice.pk]
        )
        assert cursor.fetchone() == ("first",)
        sequential_after, index_after = queue_table_scans(cursor)
    assert sequential_after == sequential_before
    assert index_after >= index_before + 2  # the row locked, then updated
