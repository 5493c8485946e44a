"""Maintenance jobs whose statements grow with whole tables run those statements without the statement timeout that
bounds requests, and only those: the limit is back for whatever the connection runs next."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from tasks.sla.archive import completed_tasks_archive, completed_tasks_archive_plan
from tasks.sla.maintenance import check_integrity, refresh_dashboards, update_queue_statistics


def statement_timeouts_seen(job) -> list[tuple[str, int]]:
    """Runs `job` and returns, for each statement it ran, its first words and the statement timeout in force."""
    seen: list[tuple[str, int]] = []
    probe = "SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'"

    def observe(execute, sql, params, many, context):
        if sql != probe and not sql.startswith("SET LOCAL"):
            context["cursor"].execute(probe)
            seen.append((" ".join(sql.split()[:4]), context["cursor"].fetchone()[0]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(observe):
        job()
    return seen


def limits_for(seen: list[tuple[str, int]], start: str) -> set[int]:
    found = {timeout for statement, timeout in seen if statement.startswith(start)}
    assert found, f"no statement starting {start!r} among {[statement for statement, _ in seen]}"
    return found


@pytest.fixture
def configured_limit(committed_db) -> int:
    """Real commits: a lifted limit must end with the job's own transaction, not with the test's."""
    return settings.DATABASE_STATEMENT_TIMEOUT


def test_refreshing_dashboards_lifts_the_limit_then_restores_it(configured_limit):
    seen = statement_timeouts_seen(refresh_dashboards)

    assert limits_for(seen, "SELECT flowable.dashboards_refresh()") == {0}
    assert limits_for(seen, "INSERT INTO flowable.dashboard_refreshes") == {configured_limit}


def test_the_integrity_check_runs_its_checks_without_the_limit(configured_limit):
    seen = statement_timeouts_seen(check_integrity)

    assert limits_for(seen, "SELECT * FROM (") == {0}


def test_queue_statistics_aggregate_without_the_limit(configured_limit):
    seen = statement_timeouts_seen(update_queue_statistics)

    assert limits_for(seen, "SELECT q.queue_id,") == {0}


def test_the_archive_counts_its_backlog_without_the_limit_and_moves_batches_under_it(configured_limit):
    plan = statement_timeouts_seen(lambda: completed_tasks_archive_plan(older_than_days=30))
    run = statement_timeouts_seen(lambda: completed_tasks_archive(older_than_days=30))

    assert {timeout for _, timeout in plan} == {0}
    assert limits_for(run, "SELECT count(*) FROM flowable.workflow_tasks") == {0}
    assert limits_for(run, "WITH batch AS (") == {configured_limit}  # each batch is bounded by its size
