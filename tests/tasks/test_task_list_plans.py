"""The task list API and the queue page read about a page's worth of index entries whatever the caller's queues
hold: EXPLAIN of the statements they send, with 120,000 tasks in alice's two queues, shows no sequential scan of
the task table and no sort or count that reaches it without a LIMIT in between."""

from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.pagination import KeysetList
from entitlements.models import User
from entitlements.row_scope import acting_as
from tasks.api import TASK_LIST_ORDERING
from tasks.models import WorkflowTask
from tests.tasks.test_query_plans import nodes, scans_tasks

pytestmark = pytest.mark.django_db

SCOPE = 120_000


BULK_NAME = "plan bulk "


@pytest.fixture(scope="module")
def committed_scope(django_db_setup, django_db_blocker):
    """alice's queues hold 120,000 tasks of every status (most completed), as a busy team's do; committed once for
    the module and vacuumed, as autovacuum leaves a table in production (an index-only scan needs the visibility
    map), then deleted."""
    from tests.conftest import seed_demo_org
    from tests.roles import admin_connect

    with django_db_blocker.unblock():
        if not User.objects.filter(username="supervisor").exists():
            seed_demo_org()
        alice = User.objects.get(username="alice").pk
    admin = admin_connect(autocommit=True)
    try:
        admin.execute(
            """
            INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
                escalation_level, required_skills, variables, form_fields, created_at, updated_at,
                task_definition_key, delegation_state, assignee_id, claimed_at, completed_at)
            SELECT %(name)s || g, '', (ARRAY['intake', 'triage'])[1 + (g / 10) %% 2], '{}', s.status,
                   (g * 7919) %% 101, 0, '{}', '{}', '[]', now() - make_interval(secs => (g * 104729) %% 2592000),
                   now(), '', '', CASE WHEN s.status = 'CLAIMED' THEN %(alice)s END,
                   CASE WHEN s.status = 'CLAIMED' THEN now() END, CASE WHEN s.status = 'COMPLETED' THEN now() END
              FROM generate_series(1::bigint, %(scope)s) AS g
             CROSS JOIN LATERAL (SELECT CASE WHEN g %% 10 < 6 THEN 'COMPLETED' WHEN g %% 10 < 9 THEN 'OPEN'
                                             ELSE 'CLAIMED' END AS status) s
            """,
            {"name": BULK_NAME, "alice": alice, "scope": SCOPE},
        )
        admin.execute("VACUUM ANALYZE flowable.workflow_tasks")
        yield
    finally:
        admin.execute("DELETE FROM flowable.workflow_tasks WHERE name LIKE %s", [BULK_NAME + "%"])
        admin.execute("ANALYZE flowable.workflow_tasks")
        admin.close()


@pytest.fixture
def big_scope(committed_scope, demo_org, caseworker_alice):
    return caseworker_alice


def list_statements(request) -> list[str]:
    """The statements a request sends that read the task list (its page's keys and its count)."""
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code == 200, response.content[:500]
    return [
        query["sql"]
        for query in captured.captured_queries
        if "workflow_tasks" in query["sql"]
        and not query["sql"].startswith("EXPLAIN")
        and ("LATERAL" in query["sql"] or "count(" in query["sql"])
    ]


def assert_reads_a_page_not_the_scope(sql):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0][0]["Plan"]
    every = list(nodes(plan))
    shown = f"{sql}\n{plan}"
    assert not [n for n in every if n["Node Type"] == "Seq Scan" and scans_tasks(n)], shown
    assert any(scans_tasks(n) and "Index" in n["Node Type"] for n in every), shown
    for node in every:
        if "Sort" in node["Node Type"] or node["Node Type"] == "Aggregate":
            # Sorting or counting the few rows of each probe is fine; reaching the table with no LIMIT between
            # would sort or count the scope.
            # A fetch by primary key of the page's rows (keys the probes chose, under a LIMIT) reads 51 rows.
            below = list(nodes(node, stop_at=("Limit",)))
            assert not any(scans_tasks(n) and n.get("Index Name") != "workflow_tasks_pkey" for n in below), shown


def middle_cursor() -> str:
    """A cursor halfway down the list (priority 50, created 15 days ago), as a late page's link carries."""
    listing = KeysetList(WorkflowTask.objects.all(), ordering=TASK_LIST_ORDERING)
    middle = SimpleNamespace(priority=50, created_at=timezone.now() - timezone.timedelta(days=15), task_id=0)
    return listing.cursor_for(middle, backward=False)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"status": "OPEN"},
        {"status": "COMPLETED"},
        {"queue": "intake"},
        {"queue": "triage", "status": ["OPEN", "CLAIMED"]},
        {"min_priority": 60},
        "late page",
    ],
    ids=["page 1", "open", "completed", "one queue", "queue and statuses", "min priority", "late page"],
)
def test_the_task_list_reads_index_probes_not_its_scope(api_as, big_scope, query):
    if query == "late page":
        query = {"cursor": middle_cursor()}
    client = api_as(big_scope)

    statements = list_statements(lambda: client.get("/api/workflow/tasks/", query))

    assert len(statements) == 2, statements  # the page (its keys chosen by the probes) and the capped count
    assert "unnest(" in statements[0] and "LIMIT 51" in statements[0]
    for sql in statements:
        assert_reads_a_page_not_the_scope(sql)


@pytest.mark.parametrize("query", ["", "queue=triage", "min_priority=70", "late page"])
def test_the_queue_page_reads_index_probes_not_its_scope(big_scope, query):
    if query == "late page":
        query = f"cursor={middle_cursor()}"
    client = Client()
    client.force_login(big_scope)

    statements = list_statements(lambda: client.get(f"/inbox/queues/?{query}"))

    assert len(statements) == 2, statements
    for sql in statements:
        assert_reads_a_page_not_the_scope(sql)


def test_the_queue_page_reads_open_tasks_from_the_index_alone(big_scope):
    """Its probes and its capped count, planned in the caller's row scope, are index-only scans of the OPEN-task
    index: the policies' columns are in it. Without them the planner fetched every probed row from the heap, or
    took a bitmap of the queue's whole backlog and sorted it (migration 0049)."""
    client = Client()
    client.force_login(big_scope)
    statements = list_statements(lambda: client.get("/inbox/queues/"))

    for sql in statements:
        with acting_as(big_scope), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0][0]["Plan"]
        probes = [n for n in nodes(plan) if scans_tasks(n) and n.get("Index Name") != "workflow_tasks_pkey"]
        assert probes, f"{sql}\n{plan}"
        assert {(n["Node Type"], n.get("Index Name")) for n in probes} == {
            ("Index Only Scan", "idx_workflow_tasks_claim_open")
        }, f"{sql}\n{plan}"


def test_the_queue_page_shows_the_scope_as_an_estimate(big_scope):
    client = Client()
    client.force_login(big_scope)

    page = client.get("/inbox/queues/").content.decode()

    assert "(about " in page  # 36,000 open tasks: past the cap, the planner's estimate
