"""Database health on a server that loads pg_stat_statements and streams to a standby (tasks/console/database_health.py).

The shared test cluster has neither (its shared_preload_libraries is empty, its pg_hba.conf allows no replication), so
a throwaway primary that preloads the extension, and its standby by pg_basebackup -R, stand in. The primary holds our
roles and the two database health functions as the migration makes them; the reads run in a Django process logging
in as the application role, as the web's do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from core.db_roles import APP, OWNER, roles_ensure
from tests.project.clusters import ThrowawayCluster

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "workflow"
SLOW_STATEMENT = "SELECT pg_sleep(0.2) /* recorded slow probe */"
FUNCTIONS = [ROOT / "tasks" / "sql" / "database_activity.sql", ROOT / "tasks" / "sql" / "database_replication.sql"]

READ_SCRIPT = """
import json
from tasks.console.database_health import database_gauges, database_health
health = database_health()
gauges = database_gauges()
print(json.dumps({
    "recorded": [[s.role, s.calls, s.max_ms, s.query] for s in health.recorded_slow or []],
    "problem": health.statements_problem,
    "replicas": [[r.application, r.state, r.replay_lag_seconds] for r in health.replicas],
    "lag_gauges": gauges.replication_lag,
    "reads_every_statement": health.reads_every_statement,
}))
"""


@pytest.fixture(scope="module")
def primary_with_standby():
    primary = ThrowawayCluster(prefix="health-primary-", settings={"shared_preload_libraries": "pg_stat_statements"})
    standby = None
    try:
        primary.start()
        roles_ensure(f"postgresql://postgres@127.0.0.1:{primary.port}/postgres", database=DATABASE)
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{primary.port}/{DATABASE}", autocommit=True) as admin:
            admin.execute("CREATE EXTENSION pg_stat_statements")
            admin.execute(f"CREATE SCHEMA flowable AUTHORIZATION {OWNER}")
            admin.execute(f"SET ROLE {OWNER}")
            for path in FUNCTIONS:
                admin.execute(path.read_text())
            admin.execute(f"GRANT USAGE ON SCHEMA flowable TO {APP}")
        standby = ThrowawayCluster(prefix="health-standby-", standby_of=primary)
        standby.start()
        yield primary
    finally:
        if standby is not None:
            standby.remove()
        primary.remove()


def health_read(primary: ThrowawayCluster) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{APP}@127.0.0.1:{primary.port}/{DATABASE}",
        "DB_SLOW_QUERY_MS": "100",
        "LOG_LEVEL": "WARNING",
    }
    for name in ("DATABASE_SET_ROLE", "DATABASE_MIGRATE_URL", "DATABASE_ADMIN_URL", "DATABASE_REPLICA_URL"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", READ_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_recorded_slow_statements_and_the_standby_lag_are_read_as_the_application_role(primary_with_standby):
    with psycopg.connect(f"postgresql://{APP}@127.0.0.1:{primary_with_standby.port}/{DATABASE}") as app:
        app.execute(SLOW_STATEMENT)
        app.execute("SELECT 1 /* quick probe */")

    found = health_read(primary_with_standby)

    assert found["problem"] == ""
    recorded = [row for row in found["recorded"] if "recorded slow probe" in row[3]]
    assert len(recorded) == 1 and recorded[0][0] == APP and recorded[0][1] == 1 and recorded[0][2] >= 100
    assert not [row for row in found["recorded"] if "quick probe" in row[3]]  # under the threshold
    assert [(name, state) for name, state, _ in found["replicas"]] == [("walreceiver", "streaming")]
    assert [(name, address) for name, address, _ in found["lag_gauges"]] == [("walreceiver", "127.0.0.1")]
    assert found["reads_every_statement"] is True


def test_an_owner_without_pg_read_all_stats_is_reported(primary_with_standby):
    superuser = f"postgresql://postgres@127.0.0.1:{primary_with_standby.port}/{DATABASE}"
    with psycopg.connect(superuser, autocommit=True) as admin:
        admin.execute(f"REVOKE pg_read_all_stats FROM {OWNER}")
    try:
        found = health_read(primary_with_standby)
    finally:
        with psycopg.connect(superuser, autocommit=True) as admin:
            admin.execute(f"GRANT pg_read_all_stats TO {OWNER}")

    assert found["reads_every_statement"] is False
    assert [state for _, state, _ in found["replicas"]] == [None]  # the standby's details are hidden too
