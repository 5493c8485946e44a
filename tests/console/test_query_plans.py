"""The dashboard and the task changelist on generated data (≥100k tasks): no sequential scan of workflow_tasks."""
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks.dashboard import supervisor_dashboard
from tasks.maintenance import refresh_dashboards

from .helpers import TASKS_URL, generate_tasks

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

GENERATED_TASKS = 120_000
FULL_SCAN_SHARE = 0.25
SEQ_SCAN_ON_TASKS = re.compile(r"Seq Scan on workflow_tasks")


@pytest.fixture
def many_tasks(caseworker_alice):
    generate_tasks(GENERATED_TASKS, caseworker_alice)
    refresh_dashboards()


def plans_touching_tasks(queries) -> list[tuple[str, str]]:
    plans = []
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if "workflow_tasks" not in sql or not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            cursor.execute("EXPLAIN " + sql)
            plans.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return plans


def seq_scans_of_tasks(sql) -> list[int]:
    """Rows each sequential scan of workflow_tasks actually read when `sql` ran (EXPLAIN ANALYZE)."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    read, nodes = [], [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "workflow_tasks":
            read.append((node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"])
    return read


def test_dashboard_reads_never_scan_workflow_tasks(many_tasks, supervisor_sam):
    with CaptureQueriesContext(connection) as captured:
        dashboard = supervisor_dashboard(user=supervisor_sam)

    assert sum(q.open for q in dashboard.queues) > 0
    plans = plans_touching_tasks(captured.captured_queries)
    assert plans, "the caseworker figures read workflow_tasks through its indexes"
    for sql, plan in plans:
        assert not SEQ_SCAN_ON_TASKS.search(plan), f"{sql}\n{plan}"


def test_task_changelist_never_scans_workflow_tasks(many_tasks, client, supervisor_sam):
    client.force_login(supervisor_sam)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(TASKS_URL)

    assert response.status_code == 200
    # A sequential scan under the capped count's LIMIT stops at COUNT_CAP rows: allowed, a full pass is not.
    for sql, plan in plans_touching_tasks(captured.captured_queries):
        for rows_read in seq_scans_of_tasks(sql):
            assert rows_read <= FULL_SCAN_SHARE * GENERATED_TASKS, f"{sql}\n{plan}"
