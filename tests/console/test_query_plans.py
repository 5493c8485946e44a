"""The dashboard and the task changelist on generated data (≥100k tasks): no sequential scan of workflow_tasks."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks.console.dashboard import supervisor_dashboard
from tasks.models import WorkflowTask
from tasks.sla.maintenance import refresh_dashboards

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


def test_completed_today_per_caseworker_reads_only_completions_after_the_hourly_view(many_tasks, supervisor_sam):
    from django.utils import timezone

    from tasks.console.dashboard import CASEWORKERS_SQL, VIEW_HOURS_END_SQL

    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    params = {"queues": ["intake", "triage", "fraud-investigation", "legal-review", "escalations"], "today": today}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = 'CLAIMED' AND queue_name = ANY(%(queues)s)),"
            "       count(*) FILTER (WHERE status = 'COMPLETED' AND assignee_id IS NOT NULL"
            "                          AND queue_name = ANY(%(queues)s) AND completed_at >= greatest(%(today)s,"
            "           (SELECT max(hour) + interval '1 hour' FROM flowable.mv_caseworker_completions_hourly)))"
            "  FROM flowable.workflow_tasks",
            params,
        )
        claimed, live = cursor.fetchone()
        cursor.execute(VIEW_HOURS_END_SQL)
        params["live_since"] = max(today, cursor.fetchone()[0] or today)
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + CASEWORKERS_SQL, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    read, nodes = 0, [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node.get("Relation Name") == "workflow_tasks":
            read += (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
    assert read <= claimed + live, json.dumps(plan, indent=1)


def test_completed_today_counts_each_completion_once_across_the_refresh(supervisor_sam, caseworker_alice, make_task):
    from django.utils import timezone

    from tasks.services import task_claim, task_complete

    now = timezone.now()
    done = []
    for _ in range(3):
        task = make_task("intake")
        task_claim(user=caseworker_alice, task_id=task.pk)
        task_complete(user=caseworker_alice, task_id=task.pk)
        done.append(task.pk)
    # One completion an hour earlier (inside the hourly view after the refresh) when that is still today.
    earlier = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    WorkflowTask.objects.filter(pk=done[0]).update(completed_at=earlier)
    expected = 3 if earlier.date() == now.date() else 2
    refresh_dashboards()
    after = make_task("intake")
    task_claim(user=caseworker_alice, task_id=after.pk)
    task_complete(user=caseworker_alice, task_id=after.pk)

    alice = next(c for c in supervisor_dashboard(user=supervisor_sam).caseworkers if c.username == "alice")
    assert alice.completed_today == expected + 1
