"""Case scopes on generated data (60k cases): a list of a small scope reads about the cases in it, a list of a big
one stops at its page or capped count; neither reads the whole table (cases/selectors.py: cases_supervised_by,
cases_visible_to)."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases import selectors
from cases.selectors import cases_supervised_by, cases_visible_to
from tasks.console.admin_console import COUNT_CAP
from tests.console.helpers import legal_supervisor
from tests.roles import analyze

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

GENERATED_CASES = 60_000
# Rows a table's scans may read per case a list needs: the case, its mapping found by its hops and again through
# its task, the task.
READS_PER_MATCH = 3
CASE_TABLES = ("cases", "case_workflow_mapping", "workflow_tasks")
# A first page may walk the cases newest first against the hashed matches: about 50 / 1 % of them here.
PAGE_WALK_SHARE = 0.1

# One case, one process instance, one mapping and one task per queue its work reached, per number g. Every case
# passes intake and triage; then 1 % reach legal-review, 20 % fraud-investigation and 2 % escalations. One case in
# a thousand also has a task in legal-review that no hop records (work moved without a hop: the task arm of the
# rule). One in a thousand is assigned to `assignee`, one in a thousand created by `creator`.
GENERATE_CASES_SQL = """
WITH definition AS (
    INSERT INTO flowable.workflow_definitions (process_key, version, name, bpmn_xml, sla_config, is_active, deployed_at)
    SELECT 'generated_cases', coalesce(max(version), 0) + 1, 'Generated cases', '', '{}', true, now()
      FROM flowable.workflow_definitions WHERE process_key = 'generated_cases'
    RETURNING workflow_id
), numbered AS (
    SELECT g, CASE WHEN g %% 100 = 0 THEN ARRAY['intake', 'triage', 'legal-review']
                   WHEN g %% 100 <= 20 THEN ARRAY['intake', 'triage', 'fraud-investigation']
                   WHEN g %% 100 <= 22 THEN ARRAY['intake', 'triage', 'escalations']
                   ELSE ARRAY['intake', 'triage'] END AS path
      FROM generate_series(1, %(count)s) g
), new_cases AS (
    INSERT INTO onecms.cases (case_number, title, description, allegations, status, priority, created_at, updated_at,
                              assigned_to_id, created_by_id)
    SELECT 'GEN-' || g, 'Generated case ' || g, '', '[]', 'IN_PROGRESS', g %% 101,
           now() - interval '90 days' + g * interval '1 second', now(),
           CASE WHEN g %% 1000 = 7 THEN %(assignee)s END, CASE WHEN g %% 1000 = 3 THEN %(creator)s END
      FROM numbered
    RETURNING case_id, case_number
), new_instances AS (
    INSERT INTO flowable.process_instances (definition_id, business_key, variables, status, started_at, updated_at)
    SELECT d.workflow_id, c.case_number, '{}', 'RUNNING', now(), now() FROM new_cases c, definition d
    RETURNING process_instance_id, business_key
), new_mappings AS (
    INSERT INTO onecms.case_workflow_mapping (case_id, process_instance_id, workflow_type, routing_history, created_at)
    SELECT c.case_id, i.process_instance_id, 'generated_cases',
           (SELECT jsonb_agg(jsonb_build_object('from_queue', n.path[h - 1], 'to_queue', n.path[h],
                                                'at', now(), 'by', 'system', 'reason', 'generated') ORDER BY h)
              FROM generate_subscripts(n.path, 1) h),
           now()
      FROM new_cases c
      JOIN new_instances i ON i.business_key = c.case_number
      JOIN numbered n ON n.g = substr(c.case_number, 5)::int
    RETURNING process_instance_id
)
INSERT INTO flowable.workflow_tasks
    (process_instance_id, name, description, queue_name, candidate_groups, assignee_id, owner_id, delegation_state,
     status, priority, escalation_level, required_skills, variables, form_fields, created_at, completed_at,
     updated_at, task_definition_key)
SELECT i.process_instance_id, 'Step in ' || t.queue, '', t.queue, ARRAY[]::varchar[], NULL, NULL, '',
       CASE WHEN t.last THEN 'OPEN' ELSE 'COMPLETED' END, 50, 0, ARRAY[]::varchar[], '{}', '[]', now(),
       CASE WHEN t.last THEN NULL ELSE now() END, now(), ''
  FROM new_instances i
  JOIN numbered n ON n.g = substr(i.business_key, 5)::int
  CROSS JOIN LATERAL (
        SELECT n.path[h] AS queue, h = cardinality(n.path) AS last FROM generate_subscripts(n.path, 1) h
        UNION ALL
        SELECT 'legal-review', false WHERE n.g %% 1000 = 50
       ) t
"""


# Rows ANALYZE samples are 300 x the statistics target: at 1,000 it reads these tables whole.
WHOLE_TABLE_STATISTICS_TARGET = 1000


def generate_cases(count: int, *, assignee, creator) -> None:
    """Bulk cases with their workflow rows straight into the tables, then ANALYZE them whole.

    At the default target ANALYZE samples 30,000 rows, and the estimates then vary from run to run: about one run
    in thirty estimated 790 legal-review tasks for 660, and with this table size that tips the planner to
    hash-joining the whole mapping table (reading every row of it) rather than probing its index. Exact statistics
    make the plan under test the same on every run.
    """
    with connection.cursor() as cursor:
        # One INSERT of every case and its workflow rows: on a busy machine longer than a request may run.
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute(GENERATE_CASES_SQL, {"count": count, "assignee": assignee.pk, "creator": creator.pk})
        cursor.execute(f"SET default_statistics_target = {WHOLE_TABLE_STATISTICS_TARGET}")
        for table in (
            "onecms.cases",
            "onecms.case_workflow_mapping",
            "flowable.process_instances",
            "flowable.workflow_tasks",
        ):
            analyze(cursor, table)
        cursor.execute("RESET default_statistics_target")


@pytest.fixture
def lena(demo_org):
    """Supervises the Legal department's queues (legal-review): about 1 % of the generated cases."""
    return legal_supervisor()


@pytest.fixture
def many_cases(lena):
    generate_cases(GENERATED_CASES, assignee=lena, creator=lena)


def captured_sql(read) -> tuple:
    """What `read` returned, and the SQL of its last query."""
    with CaptureQueriesContext(connection) as captured:
        result = read()
    assert captured.captured_queries, "the read ran a query"
    return result, captured.captured_queries[-1]["sql"]


def rows_read(sql: str) -> dict[str, int]:
    """Rows each table's scans actually read when `sql` ran (EXPLAIN ANALYZE), filtered-out rows included."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    read, nodes = {}, [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if "Relation Name" in node:
            rows = (
                node["Actual Rows"]
                + node.get("Rows Removed by Filter", 0)
                + node.get("Rows Removed by Index Recheck", 0)
            )
            read[node["Relation Name"]] = read.get(node["Relation Name"], 0) + rows * node["Actual Loops"]
    return read


def assert_reads_at_most(sql: str, limit: int) -> None:
    read = rows_read(sql)
    for table in CASE_TABLES:
        assert read.get(table, 0) <= limit, f"{table}: {read.get(table, 0)} rows read, at most {limit} expected\n{sql}"


def test_capped_count_of_a_department_supervisor_reads_the_cases_in_scope_not_the_table(many_cases, lena):
    count, sql = captured_sql(lambda: cases_supervised_by(user=lena).order_by()[:COUNT_CAP].count())

    assert 0 < count < COUNT_CAP
    assert_reads_at_most(sql, READS_PER_MATCH * count)


def test_first_page_of_a_department_supervisor_reads_a_small_share_of_the_table(many_cases, lena):
    page, sql = captured_sql(
        lambda: list(cases_supervised_by(user=lena).select_related("assigned_to").order_by("-case_id")[:50])
    )

    assert len(page) == 50
    assert_reads_at_most(sql, int(PAGE_WALK_SHARE * GENERATED_CASES))


def test_capped_count_of_a_floor_supervisor_stops_at_the_cap(many_cases, supervisor_sam):
    count, sql = captured_sql(lambda: cases_supervised_by(user=supervisor_sam).order_by()[:COUNT_CAP].count())

    assert count == COUNT_CAP
    assert_reads_at_most(sql, READS_PER_MATCH * COUNT_CAP)


def test_first_page_of_a_floor_supervisor_stops_at_the_page(many_cases, supervisor_sam):
    page, sql = captured_sql(
        lambda: list(cases_supervised_by(user=supervisor_sam).select_related("assigned_to").order_by("-case_id")[:50])
    )

    assert len(page) == 50
    assert_reads_at_most(sql, READS_PER_MATCH * 50)


def test_cases_visible_to_a_caseworker_are_counted_and_listed_from_the_cases_in_scope(many_cases, lena):
    # The scope read from its matches (a small scope's list reads it so: cases/selectors.py: case_list), counted in
    # full and its newest page.
    scope = cases_visible_to(user=lena)
    count, count_sql = captured_sql(scope.count)
    page, page_sql = captured_sql(lambda: list(scope.select_related("assigned_to").order_by("-created_at")[:50]))

    assert len(page) == 50
    for sql in (count_sql, page_sql):
        assert_reads_at_most(sql, READS_PER_MATCH * count)


@pytest.mark.parametrize("read_matches", [True, False], ids=["reading the matches", "testing each case"])
def test_both_ways_of_reading_a_supervisors_scope_find_the_same_cases(
    many_cases, lena, supervisor_sam, monkeypatch, read_matches
):
    monkeypatch.setattr(selectors, "MATCH_READ_COST", 0 if read_matches else float("inf"))

    # Every generated case passes intake; legal-review holds every hundredth case by its hops, and one case in a
    # thousand by a task alone.
    assert cases_supervised_by(user=supervisor_sam).filter(case_number__startswith="GEN-").count() == GENERATED_CASES
    assert cases_supervised_by(user=lena).count() == GENERATED_CASES // 100 + GENERATED_CASES // 1000


def test_cases_visible_to_a_caseworker_are_those_of_their_queues_assigned_to_or_created_by_them(many_cases, lena):
    visible = cases_visible_to(user=lena)

    assert visible.count() == GENERATED_CASES // 100 + 3 * (GENERATED_CASES // 1000)
    assert visible.filter(assigned_to=lena).count() == GENERATED_CASES // 1000
    assert visible.filter(created_by=lena).count() == GENERATED_CASES // 1000
