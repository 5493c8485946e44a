"""A real PostgreSQL restarted under load: clients get 503 with Retry-After during the outage, never a 500, and
nothing they were told succeeded is lost.

The server is a real gunicorn with bin/run's threaded workers, on a throwaway cluster (initdb on a free port
under a temporary folder) holding a copy of the test database, so that stopping it disturbs nothing else.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.project.clusters import ThrowawayCluster, postgres_bin
from tests.project.drills import (
    CLIENTS,
    ClaimingClients,
    api_token,
    drill_facts,
    drill_tasks_create,
    gunicorn_serving,
    integrity_checked,
    restore_test_database,
)

pytestmark = pytest.mark.slow

TASKS = 160
DRILL = "Restart drill"


@pytest.fixture
def cluster(committed_db, test_database_url):
    """A cluster holding a copy of the test database: the demo organisation and the tasks made before it."""
    cluster = ThrowawayCluster(prefix="restart-drill-")
    try:
        cluster.start()
        subprocess.run(
            [postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "workflow"],
            check=True,
            capture_output=True,
        )
        restore_test_database(test_database_url, cluster.url)
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def server(cluster, tmp_path):
    with gunicorn_serving(cluster.url, tmp_path / "gunicorn.log") as port:
        yield port


def test_a_database_restart_under_load_gives_503s_not_500s_and_loses_nothing(cluster, server):
    drill_tasks_create(server, api_token(cluster.url, "supervisor"), count=TASKS, name=DRILL)
    clients = ClaimingClients(server, api_token(cluster.url))

    clients.start()
    clients.wait_until(lambda: len(clients.completed_ok) >= CLIENTS, "the clients never got to work")
    cluster.stop()
    # The outage lasts until the clients have seen it, however slow the machine: one 503 per client, in all.
    clients.wait_until(lambda: clients.statuses[503] >= CLIENTS, "the clients never saw the outage")
    cluster.start()
    clients.finish()

    assert clients.server_errors() == [], clients.statuses
    assert clients.statuses[503] > 0, f"the outage was not seen by any client: {clients.statuses}"
    assert clients.missing_retry_after == []
    clients.complete_left_claimed()
    facts = drill_facts(cluster.url, DRILL)
    assert clients.completed_ok <= facts["completed"], "a completion the client was told of is missing"
    assert facts["completed"] == facts["drill"], "every drill task ends completed"
    assert facts["completed_events"] == len(facts["drill"]), "one COMPLETED history row per task"
    integrity_checked(cluster.url)
