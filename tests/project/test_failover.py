"""The failover drill: a pg_auto_failover formation (monitor, primary, synchronous standby) loses its primary while
8 clients claim and complete tasks through a real gunicorn whose DATABASE_URL lists both nodes
(target_session_attrs=read-write). The monitor promotes the standby; the application carries on without a restart.
During the switch the clients get 503 with Retry-After, never a 500; no task is claimed twice; nothing a client was
told had succeeded is missing from the new primary; check_integrity passes there.

deploy/failover/README.md is the production side of it.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

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
from tests.project.formation import Formation, FormationToolsMissing, synchronous_standbys

pytestmark = pytest.mark.slow

TASKS = 200
DRILL = "Failover drill"
# The bound: requests succeed again within this long of the promotion. A deadline on a wait, never a measure.
RECOVERY_LIMIT_SECONDS = 30
# What a client may be answered: a claim or completion (200), nothing left (204), a completion whose first try's
# answer was lost with the connection (409), and the switch itself (503).
EXPECTED_STATUSES = {200, 204, 409, 503}


@pytest.fixture
def formation(committed_db, test_database_url):
    """A formation whose primary holds a copy of the test database (replicated to the standby as it is restored)."""
    try:
        made = Formation(prefix="failover-drill-")
    except FormationToolsMissing as missing:
        pytest.skip(str(missing))
    try:
        made.create()
        restore_test_database(test_database_url, made.nodes["node1"].url)
        yield made
    finally:
        made.remove()


@pytest.fixture
def server(formation, tmp_path):
    with gunicorn_serving(formation.url(), tmp_path / "gunicorn.log") as port:
        yield port


def test_losing_the_primary_under_load_promotes_the_standby_with_no_500_and_no_lost_commit(formation, server):
    primary, standby = formation.nodes["node1"], formation.nodes["node2"]
    drill_tasks_create(server, api_token(formation.url(), "supervisor"), count=TASKS, name=DRILL)
    clients = ClaimingClients(server, api_token(formation.url()))

    clients.start()
    clients.wait_until(lambda: len(clients.completed_ok) >= CLIENTS, "the clients never got to work")
    names, standbys = synchronous_standbys(primary.url)
    assert names and standbys and set(standbys) <= {"sync", "quorum"}, "commits must wait for the standby"
    killed_at = time.monotonic()
    formation.kill(primary)
    formation.wait_for({"node2": ("wait_primary", "primary")})
    promoted_at = time.monotonic()
    clients.wait_until(
        lambda: clients.last_success_sent_at > promoted_at,
        "no request succeeded after the promotion",
        limit=RECOVERY_LIMIT_SECONDS,
    )
    recovered_after = clients.last_success_sent_at - promoted_at
    clients.finish()
    print(
        f"failover drill: promotion seen {promoted_at - killed_at:.1f} s after the kill, a request sent"
        f" {recovered_after:.1f} s after it succeeded; answers {dict(clients.statuses)}"
    )

    assert set(clients.statuses) <= EXPECTED_STATUSES, clients.statuses
    assert clients.statuses[503] > 0, f"the switch was not seen by any client: {clients.statuses}"
    assert clients.missing_retry_after == []
    twice = [task for task, times in Counter(clients.claimed_ok).items() if times > 1]
    assert twice == [], "tasks claimed twice"
    clients.complete_left_claimed()
    facts = drill_facts(standby.url, DRILL)
    assert set(clients.claimed_ok) <= set(facts["claims_per_task"]), "a claim the client was told of is missing"
    assert clients.completed_ok <= facts["completed"], "a completion the client was told of is missing"
    assert [task for task, claims in facts["claims_per_task"].items() if claims > 1] == [], "claimed twice"
    assert facts["completed"] == facts["drill"], "every drill task ends completed"
    assert facts["completed_events"] == len(facts["drill"]), "one COMPLETED history row per task"
    integrity_checked(formation.url())
