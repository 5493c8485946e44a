"""The case list's page statement on 100,000 generated cases, run as the caller under row-level security: page 1
and a late page (by cursor) read about a page of cases for a caller who sees them all, about five pages for one who
sees a fifth; neither sorts or counts the scope, nor reads the mapping or task tables whole
(cases/selectors.py: case_list)."""

import json
from base64 import b64encode

import pytest
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.request import Request

from cases import selectors
from cases.models import Case
from cases.pagination import CaseCursorPagination, CountKind
from entitlements.row_scope import acting_as
from tests.cases.test_case_scope_plans import generate_cases
from tests.console.helpers import legal_supervisor

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

GENERATED_CASES = 100_000
PAGE = CaseCursorPagination.page_size
# Plan nodes that read or order the whole input before the first row comes out.
WHOLE_INPUT_NODES = {"Sort", "Incremental Sort", "Aggregate", "Hash", "Hash Join", "Materialize", "Gather Merge"}
# Cases a walk may read per case it keeps, over the share of cases the caller sees (the generated scopes are evenly
# spread: every fifth case is bob's), with room for the spread.
WALK_SLACK = 2
# Mapping and task rows read per case walked: the policies' checks and the list's own test read a case's mapping and
# its two or three tasks by index, a few times over.
ROWS_PER_CASE_WALKED = 20
WORKFLOW_TABLES = ("onecms.case_workflow_mapping", "flowable.workflow_tasks")


@pytest.fixture
def lena(demo_org):
    """Views the Legal department's queues (legal-review) only: about 1 % of the generated cases."""
    return legal_supervisor()


@pytest.fixture
def many_cases(lena):
    generate_cases(GENERATED_CASES, assignee=lena, creator=lena)


def late_cursor() -> str:
    """A cursor half-way down the cases, as the `next` links of the pages before it would lead to."""
    position = Case.objects.order_by("-pk").values_list("pk", flat=True)[GENERATED_CASES // 2]
    return b64encode(f"p={position}".encode()).decode()


def tuples_read(tables) -> int:
    """Rows this transaction has read so far from the tables and their indexes (the functions' reads included)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(oid)), 0) FROM pg_class "
            "WHERE oid = ANY (%s::regclass[]) OR oid IN (SELECT indexrelid FROM pg_index "
            "WHERE indrelid = ANY (%s::regclass[]))",
            [list(tables), list(tables)],
        )
        return int(cursor.fetchone()[0])


def plan_of(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def cases_read(plan: dict) -> int:
    return sum(
        (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        for node in nodes(plan)
        if node.get("Relation Name") == "cases"
    )


def list_page(user, cursor: str | None):
    """A page of the list as the API makes it, in the user's row scope: the page, its count, every statement run
    and the plan of the page's statement run again (EXPLAIN ANALYZE), with the rows that run read from the mapping
    and task tables."""
    request = Request(RequestFactory().get("/api/cases/", {"cursor": cursor} if cursor else {}))
    with acting_as(user):
        with CaptureQueriesContext(connection) as captured:
            listing = selectors.case_list(user=user)
            pagination = CaseCursorPagination(count=listing.count)
            page = pagination.paginate_queryset(listing.cases, request)
        before = tuples_read(WORKFLOW_TABLES)
        plan = plan_of(captured.captured_queries[-1]["sql"])
        workflow_rows = tuples_read(WORKFLOW_TABLES) - before
    return page, pagination.count, [q["sql"] for q in captured.captured_queries], plan, workflow_rows


@pytest.mark.parametrize(("username", "share"), [("alice", 1.0), ("bob", 0.2)], ids=["sees all", "sees a fifth"])
def test_page_one_and_a_late_page_of_a_big_scope_read_about_a_page_of_cases_and_neither_sort_nor_count(
    many_cases, django_user_model, username, share
):
    user = django_user_model.objects.get(username=username)

    for cursor in (None, late_cursor()):
        page, count, statements, plan, workflow_rows = list_page(user, cursor)

        assert len(page) == PAGE
        walked = cases_read(plan)
        assert walked <= WALK_SLACK * (PAGE + 1) / share, f"{walked} cases read for a page of {PAGE}"
        assert not WHOLE_INPUT_NODES & {node["Node Type"] for node in nodes(plan)}, json.dumps(plan, indent=1)
        assert workflow_rows <= ROWS_PER_CASE_WALKED * walked, f"{workflow_rows} mapping and task rows read"
        # The count is the planner's estimate of the scope (every case, or every fifth), never a COUNT.
        assert count.kind == CountKind.ESTIMATE
        assert GENERATED_CASES * share / 1.5 <= count.value <= GENERATED_CASES * share * 1.5
        assert not [sql for sql in statements if "COUNT(" in sql.upper()]


class Rollback(Exception):
    pass


# Process instances, each with a mapping and a task, of a load that is then rolled back: entries in the
# instance-keyed indexes that no transaction sees. Loaded before the generated cases, they lie below them, at the
# low end of the indexes.
ROLLED_BACK_LOAD_SQL = """
WITH definition AS (
    INSERT INTO flowable.workflow_definitions (process_key, version, name, bpmn_xml, sla_config, is_active, deployed_at)
    VALUES ('rolled_back_load', 1, 'Rolled back', '', '{}', true, now())
    RETURNING workflow_id
), new_case AS (
    INSERT INTO onecms.cases (case_number, title, description, allegations, status, priority, created_at, updated_at)
    VALUES ('ROLLED-BACK', 'Rolled back', '', '[]', 'IN_PROGRESS', 1, now(), now())
    RETURNING case_id
), new_instances AS (
    INSERT INTO flowable.process_instances (definition_id, business_key, variables, status, started_at, updated_at)
    SELECT d.workflow_id, 'ROLLED-BACK', '{}', 'RUNNING', now(), now()
      FROM generate_series(1, %(count)s) g, definition d
    RETURNING process_instance_id
), new_mappings AS (
    INSERT INTO onecms.case_workflow_mapping (case_id, process_instance_id, workflow_type, routing_history, created_at)
    SELECT c.case_id, i.process_instance_id, 'rolled_back_load', '[]', now() FROM new_instances i, new_case c
    RETURNING process_instance_id
)
INSERT INTO flowable.workflow_tasks
    (process_instance_id, name, description, queue_name, candidate_groups, assignee_id, owner_id, delegation_state,
     status, priority, escalation_level, required_skills, variables, form_fields, created_at, completed_at,
     updated_at, task_definition_key)
SELECT process_instance_id, 'Rolled back', '', 'fraud-investigation', ARRAY[]::varchar[], NULL, NULL, '', 'OPEN', 50,
       0, ARRAY[]::varchar[], '{}', '[]', now(), NULL, now(), ''
  FROM new_mappings
"""


@pytest.fixture
def rolled_back_load(demo_org):
    """A load of 20,000 workflows rolled back before the cases are generated (request it before many_cases).

    The case test runs a few times first, on the small tables: as in a connection that has served requests for a
    while, PL/pgSQL then holds cheap plans of it to compare each new plan against."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE onecms.case_has_task_in_queues(g, ARRAY['fraud-investigation'])) "
            "FROM generate_series(1, 10) g"
        )
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(ROLLED_BACK_LOAD_SQL, {"count": 20_000})
            raise Rollback
    except Rollback:
        pass


def test_dead_entries_at_the_ends_of_the_indexes_are_not_read_for_every_case_walked(
    rolled_back_load, many_cases, django_user_model
):
    """A load rolled back (or rows archived) leaves dead entries at an end of the mappings' and tasks' indexes.
    The walk's test of each case (onecms.case_has_task_in_queues) is planned once, not per case: planning prices a
    merge join by probing those ends, reading every dead entry again for each case tested."""
    bob = django_user_model.objects.get(username="bob")

    page, count, statements, plan, workflow_rows = list_page(bob, None)

    assert len(page) == PAGE
    assert workflow_rows <= ROWS_PER_CASE_WALKED * cases_read(plan), f"{workflow_rows} mapping and task rows read"


def test_a_small_scope_is_read_from_its_matches_and_counted_exactly(many_cases, lena):
    page, count, statements, plan, workflow_rows = list_page(lena, None)

    assert len(page) == PAGE
    # One case in a hundred through legal-review, one in a thousand by a task alone, assigned to or created by her.
    assert (count.kind, count.value) == (CountKind.EXACT, GENERATED_CASES // 100 + 3 * (GENERATED_CASES // 1000))
    # Proportional to the matches (their policies' checks read a few rows each), not to the 330,000 rows' tables.
    assert workflow_rows <= ROWS_PER_CASE_WALKED * count.value
    assert cases_read(plan) <= GENERATED_CASES // 10
