"""The inbox: my claimed tasks, overdue first, and claiming the next task in one POST."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from tasks.models import WorkflowTask
from tests.roles import analyze
from tests.tasks.test_concurrency import insert_open_tasks, open_tasks_in_new_queues

pytestmark = pytest.mark.django_db


def claim(task, user):
    WorkflowTask.objects.filter(pk=task.pk).update(status="CLAIMED", assignee=user, claimed_at=timezone.now())


def test_root_redirects_to_the_inbox(page_as, caseworker_alice):
    response = page_as(caseworker_alice).get("/")
    assert response.status_code == 302 and response["Location"] == "/inbox/"


def test_inbox_requires_login():
    response = Client().get("/inbox/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_inbox_lists_my_claimed_tasks_overdue_first_with_due_text(page_as, caseworker_alice, make_task):
    later = make_task("intake", name="Later task", due_date=timezone.now() + timedelta(days=3))
    late = make_task("triage", name="Late task", due_date=timezone.now() + timedelta(minutes=1))
    WorkflowTask.objects.filter(pk=late.pk).update(due_date=timezone.now() - timedelta(hours=5))
    for task in (later, late):
        claim(task, caseworker_alice)
    body = page_as(caseworker_alice).get("/inbox/").content.decode()
    assert body.index("Late task") < body.index("Later task")
    assert "Overdue by 5\xa0hours" in body and "Due in 2\xa0days" in body
    assert "Claimed</span>" in body


def test_inbox_shows_no_tasks_claimed_by_others(page_as, caseworker_alice, legal_reviewer_carol, make_task):
    claim(make_task("triage", name="Carol's task"), legal_reviewer_carol)
    assert "Carol&#x27;s task" not in page_as(caseworker_alice).get("/inbox/").content.decode()


def test_queue_picker_offers_only_queues_i_may_work(page_as, caseworker_alice):
    body = page_as(caseworker_alice).get("/inbox/").content.decode()
    assert '<option value="intake"' in body and '<option value="triage"' in body
    assert 'value="fraud-investigation"' not in body and 'value="legal-review"' not in body


def test_claim_next_claims_the_most_urgent_task_and_opens_it(page_as, caseworker_alice, make_task):
    make_task("intake", name="Routine", priority=10)
    urgent = make_task("triage", name="Urgent", priority=90)
    response = page_as(caseworker_alice).post("/inbox/")
    assert response.status_code == 302 and response["Location"] == f"/tasks/{urgent.pk}/"
    urgent.refresh_from_db()
    assert (urgent.status, urgent.assignee) == ("CLAIMED", caseworker_alice)


def test_claim_next_from_one_queue_takes_only_from_that_queue(page_as, caseworker_alice, make_task):
    intake = make_task("intake", name="Routine", priority=10)
    make_task("triage", name="Urgent", priority=90)
    response = page_as(caseworker_alice).post("/inbox/", {"queue": "intake"})
    assert response["Location"] == f"/tasks/{intake.pk}/"


def test_claim_next_never_takes_from_a_queue_i_cannot_work(page_as, caseworker_alice, make_task):
    other = make_task("fraud-investigation", name="Not mine")
    response = page_as(caseworker_alice).post("/inbox/", {"queue": "fraud-investigation"}, follow=True)
    assert "Pick one of the queues you work" in response.content.decode()
    other.refresh_from_db()
    assert other.status == "OPEN"


def test_claim_next_from_a_queue_name_with_a_nul_byte_is_a_message(page_as, caseworker_alice):
    response = page_as(caseworker_alice).post("/inbox/", {"queue": "intake\x00"}, follow=True)
    assert response.status_code == 200 and "Pick one of the queues you work" in response.content.decode()


def test_claim_next_with_nothing_waiting_says_so(page_as, caseworker_alice):
    response = page_as(caseworker_alice).post("/inbox/", follow=True)
    assert response.status_code == 200
    assert "No task is waiting in your queues" in response.content.decode()


def test_claim_next_without_csrf_token_is_refused(caseworker_alice, make_task):
    task = make_task("intake")
    client = Client(enforce_csrf_checks=True)
    client.force_login(caseworker_alice)
    assert client.post("/inbox/").status_code == 403
    task.refresh_from_db()
    assert task.status == "OPEN"


def test_inbox_paginates_long_lists(page_as, caseworker_alice, make_task):
    from tasks.views import INBOX_PAGE_SIZE

    for n in range(INBOX_PAGE_SIZE + 2):
        claim(make_task("intake", name=f"Task {n:02d}"), caseworker_alice)
    client = page_as(caseworker_alice)
    first = client.get("/inbox/").content.decode()
    assert "Page 1 of 2" in first and 'rel="next"' in first
    second = client.get("/inbox/?page=2").content.decode()
    assert second.count('class="task-item') == 2


@pytest.fixture
def ten_thousand_open_tasks(caseworker_alice, make_task):
    """10,000 open tasks in alice's queues (and as many elsewhere), a few of them claimed by her."""
    insert_open_tasks(10_000, ["intake", "triage"])
    insert_open_tasks(10_000, ["fraud-investigation", "legal-review", "escalations"])
    ids = list(WorkflowTask.objects.filter(queue_id="intake").values_list("pk", flat=True)[:30])
    WorkflowTask.objects.filter(pk__in=ids).update(
        status="CLAIMED", assignee=caseworker_alice, claimed_at=timezone.now()
    )
    with connection.cursor() as cursor:
        analyze(cursor, "flowable.workflow_tasks")


# Session, user, the user's workable (or viewable) queues, the page's rows, the paginator's count, the forecasts of
# the page's rows (the at-risk badge, one query) and the header's unread notifications: 7 whatever the number of
# tasks; one to spare, so any per-row query (25 or 50 rows) fails the test.
INBOX_MAX_QUERIES = 8
# The queues page: session, user, the queues viewable and workable (one statement), the page's rows (their keys
# chosen by merged index probes in the same statement), the capped count and, past the cap, the planner's estimate,
# the rows' forecasts and the header's unread notifications: 8 whatever the number of tasks (a per-row query would
# add 50).
QUEUES_MAX_QUERIES = 8


def test_inbox_of_a_user_with_10000_open_tasks_renders_in_bounded_queries(
    page_as, caseworker_alice, ten_thousand_open_tasks, django_assert_max_num_queries
):
    client = page_as(caseworker_alice)
    with django_assert_max_num_queries(INBOX_MAX_QUERIES):
        response = client.get("/inbox/")
    assert response.status_code == 200
    assert response.content.decode().count('class="task-item') == 25


def test_queues_page_with_10000_open_tasks_renders_in_bounded_queries(
    page_as, caseworker_alice, ten_thousand_open_tasks, django_assert_max_num_queries
):
    client = page_as(caseworker_alice)
    with django_assert_max_num_queries(QUEUES_MAX_QUERIES):
        response = client.get("/inbox/queues/")
    assert response.status_code == 200
    assert response.content.decode().count("/claim/") == 50


def plan_nodes(queryset):
    import json

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0][0]["Plan"]

    def walk(node):
        yield node
        for child in node.get("Plans", []):
            yield from walk(child)

    return list(walk(plan)), json.dumps(plan, indent=1)


@pytest.fixture
def backlog_beyond_my_queues(ten_thousand_open_tasks):
    """As in production, most of the backlog sits in queues alice cannot see: the planner should not scan it."""
    open_tasks_in_new_queues(140_000, [f"region-{n:03d}" for n in range(100)])


def test_inbox_and_queue_listings_use_the_task_indexes(caseworker_alice, backlog_beyond_my_queues):
    from tasks.selectors import tasks_for_inbox, tasks_visible_to

    open_tasks = (
        tasks_visible_to(user=caseworker_alice).filter(status="OPEN").order_by("-priority", "created_at", "task_id")
    )
    listings = [
        tasks_for_inbox(user=caseworker_alice)[:25],
        open_tasks[:51],
        open_tasks.filter(queue_id="triage")[:51],
    ]
    for queryset in listings:
        nodes, shown = plan_nodes(queryset)
        on_tasks = [n for n in nodes if n.get("Relation Name") == "workflow_tasks"]
        assert on_tasks and not [n for n in on_tasks if n["Node Type"] == "Seq Scan"], shown
        # Any of the task table's indexes will do (the planner may pick the assignee FK index for the inbox).
        assert any(n.get("Index Name", "").startswith(("idx_workflow_tasks", "workflow_tasks_")) for n in nodes), shown


def test_list_pages_leave_the_workflow_state_in_the_database(page_as, caseworker_alice):
    """The inbox and the queue page show a task's process by its business key: they never read the instance's
    engine state (the whole serialised workflow) or the JSON documents of the task or its instance."""
    from django.test.utils import CaptureQueriesContext

    from entitlements.models import User
    from tests.pages.conftest import open_fraud_case
    from tests.pages.test_browser import deploy_demo_workflow

    deploy_demo_workflow(User.objects.get(username="supervisor"))
    case = open_fraud_case(caseworker_alice)
    task = WorkflowTask.objects.get(process_instance__business_key=case.case_number)
    client = page_as(caseworker_alice)
    read = []
    for path in ("/inbox/queues/", "/inbox/"):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        assert response.status_code == 200
        assert case.case_number in response.content.decode(), path  # the business key is on the page
        read += [query["sql"] for query in captured.captured_queries]
        claim(task, caseworker_alice)

    columns = ('"engine_state"', '"variables"', '"form_fields"')
    assert not [sql for sql in read if any(column in sql for column in columns)], read
