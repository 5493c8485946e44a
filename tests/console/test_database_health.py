"""The database health page's reads (tasks/console/database_health.py), the page, and its gauges in /metrics."""

import threading
import time

import psycopg
import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from core.db_roles import APP, OWNER
from entitlements.models import User
from tasks.console import database_health as health
from tests.console.locks import BLOCKER_SQL, WAITER_SQL, app_session, lock_wait
from tests.roles import admin_connect, owner_connect

pytestmark = pytest.mark.django_db

PAGE = "/admin/database-health/"
PROBE_TABLE = "flowable.health_probe"
SETTLE_SECONDS = 30


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def eventually(read, until):
    """read() again until until(value) holds (statistics reach other sessions a moment after they are counted)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while not until(value := read()):
        assert time.monotonic() < deadline, value
        time.sleep(0.1)
    return value


# --- blocking ---------------------------------------------------------------------------------------------------


def test_a_session_waiting_for_a_row_lock_is_shown_with_its_blocker_and_both_statements():
    with lock_wait() as wait:
        found = health.database_health().blocked

    assert len(found) == 1
    row = found[0]
    assert (row.waiting_pid, row.blocking_pid) == (wait.waiter_pid, wait.blocker_pid)
    assert row.waiting_query == WAITER_SQL and row.blocking_query == BLOCKER_SQL
    assert row.wait_event_type == "Lock" and row.blocking_state == "idle in transaction"
    # Both log in as the maintenance role acting as the application role: the session's login is what shows.
    assert row.waiting_role == row.blocking_role == connection.settings_dict["USER"]
    assert row.waited_seconds >= 0 and row.blocking_transaction_seconds >= row.waited_seconds
    assert not row.blocker_waits_too


def test_no_session_is_blocked_once_the_lock_is_released():
    with lock_wait():
        pass

    assert health.database_health().blocked == []


def test_the_application_role_sees_the_statements_of_other_logins_only_through_the_definer_function():
    with lock_wait() as wait, connection.cursor() as cursor:
        cursor.execute("SELECT current_user, query FROM pg_stat_activity WHERE pid = %s", [wait.blocker_pid])
        role, query_as_app = cursor.fetchone()

        assert role == APP and query_as_app == "<insufficient privilege>"
        assert health.database_health().blocked[0].blocking_query == BLOCKER_SQL


def test_the_owner_holds_pg_read_all_stats_and_the_application_role_does_not(admin_connection):
    held = admin_connection.execute(
        "SELECT pg_has_role(%s, 'pg_read_all_stats', 'MEMBER'), pg_has_role(%s, 'pg_read_all_stats', 'MEMBER')",
        [OWNER, APP],
    ).fetchone()

    assert held == (True, False)


# --- slow statements --------------------------------------------------------------------------------------------


@pytest.fixture
def sleeping_session():
    """A session running a statement until cancelled; yields its pid once it runs."""
    session = app_session()
    thread = threading.Thread(target=lambda: _sleep(session), daemon=True)
    thread.start()
    pid = session.info.backend_pid
    try:
        yield pid
    finally:
        session.cancel()
        thread.join(SETTLE_SECONDS)
        session.close()


def _sleep(session):
    try:
        session.execute("SELECT pg_sleep(600) /* slow probe */")
    except psycopg.Error:
        session.rollback()


def test_a_statement_running_past_the_threshold_is_slow_and_one_under_it_is_not(sleeping_session, settings):
    settings.DB_SLOW_QUERY_MS = 1
    running = eventually(lambda: [s for s in health.database_health().running_slow if s.pid == sleeping_session], bool)
    assert running[0].query == "SELECT pg_sleep(600) /* slow probe */" and running[0].wait_event == "PgSleep"

    settings.DB_SLOW_QUERY_MS = 3_600_000

    assert [s for s in health.database_health().running_slow if s.pid == sleeping_session] == []


def test_without_pg_stat_statements_the_recorded_statements_say_why():
    found = health.database_health()

    assert found.recorded_slow is None and found.statements_problem == "not installed in this database"


@pytest.fixture
def statements_extension(django_db_setup):
    """pg_stat_statements installed in the test database (committed: the page's transaction must see it)."""
    admin = admin_connect(autocommit=True)
    admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    loaded = "pg_stat_statements" in admin.execute("SHOW shared_preload_libraries").fetchone()[0]
    try:
        yield loaded
    finally:
        admin.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
        admin.close()


def test_pg_stat_statements_installed_but_not_loaded_is_reported_and_the_page_still_reads(statements_extension):
    if statements_extension:  # tests/project/test_database_health_server.py reads a server that loads it
        pytest.skip("this server loads pg_stat_statements")

    found = health.database_health()

    assert found.recorded_slow is None and "shared_preload_libraries" in found.statements_problem
    assert found.tables  # the failed read was rolled back to its savepoint, the rest was read


# --- sizes, indexes, vacuum -------------------------------------------------------------------------------------


@pytest.fixture
def probe_table(django_db_setup):
    """A committed table of ours with a never-scanned index beside its primary key, 100 rows of which 40 deleted."""
    owner = owner_connect(autocommit=True)
    owner.execute(f"DROP TABLE IF EXISTS {PROBE_TABLE}")
    owner.execute(f"CREATE TABLE {PROBE_TABLE} (probe_id int PRIMARY KEY, label text)")
    owner.execute(f"CREATE INDEX health_probe_label ON {PROBE_TABLE} (label)")
    owner.execute(f"INSERT INTO {PROBE_TABLE} SELECT g, 'row ' || g FROM generate_series(1, 100) AS g")
    owner.execute(f"DELETE FROM {PROBE_TABLE} WHERE probe_id <= 40")
    try:
        yield
    finally:
        owner.execute(f"DROP TABLE IF EXISTS {PROBE_TABLE}")
        owner.close()


def test_sizes_unused_indexes_and_dead_tuples_of_our_tables(probe_table, monkeypatch):
    # The page shows the 25 largest of each; after the whole suite many indexes as small as the probe's are unused.
    monkeypatch.setattr(health, "SECTION_ROWS", 10_000)

    def probe_vacuum():
        return next((v for v in health.database_health().vacuum if v.table == "health_probe"), None)

    vacuum = eventually(probe_vacuum, lambda v: v is not None and v.dead_tuples == 40)
    found = health.database_health()

    assert (vacuum.schema, vacuum.live_tuples, vacuum.dead_percent) == ("flowable", 60, 40)
    unused = {(i.schema, i.table, i.index) for i in found.unused_indexes}
    assert ("flowable", "health_probe", "health_probe_label") in unused
    assert ("flowable", "health_probe", "health_probe_pkey") not in unused  # a primary key is never "unused"
    assert all(i.schema in ("entitlements", "queues", "flowable", "onecms", "public") for i in found.unused_indexes)
    biggest = found.tables[0]
    assert biggest.total_bytes == max(t.total_bytes for t in found.tables) > 0
    assert biggest.total_bytes >= biggest.table_bytes + biggest.index_bytes


def test_connections_deadlocks_and_replication_of_a_server_without_standbys():
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])

    found = health.database_health()

    assert found.max_connections == max_connections
    assert 0 < found.server_connections <= max_connections
    assert dict(found.connections_by_state)["active"] >= 1  # this very read
    assert found.deadlocks >= 0 and found.replicas == []


def test_the_reads_give_up_after_the_health_timeout_not_the_sessions():
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        before = cursor.fetchone()[0]
    with health.health_cursor() as reads:
        reads.execute("SHOW statement_timeout")
        during = reads.fetchone()[0]

    assert during == "5s" and before != during


@pytest.mark.parametrize(
    ("value", "shown"), [(None, "—"), (0.42, "0.4 s"), (12.7, "12 s"), (185, "3 min 5 s"), (9000, "2.5 h")]
)
def test_spans_read_as_short_durations(value, shown):
    from tasks.templatetags.console import seconds

    assert seconds(value) == shown


# --- the page ---------------------------------------------------------------------------------------------------


def test_the_page_shows_the_blocked_session_and_the_missing_extension_to_a_supervisor(client, supervisor_sam):
    client.force_login(supervisor_sam)
    with lock_wait():
        page = client.get(PAGE).content.decode()

    assert "Blocking" in page and "/* waiter */" in page and "/* blocker */" in page
    assert "pg_stat_statements not enabled" in page and "shared_preload_libraries" in page
    assert "db-statements-hidden" not in page  # the owner holds pg_read_all_stats here
    assert "queues.workflow_queues" in page or "flowable.workflow_tasks" in page


def test_staff_without_the_permission_is_refused_and_the_index_does_not_link_it(client, supervisor_sam):
    staff = User.objects.create_user("staff-only", password="x", is_staff=True)
    client.force_login(staff)

    assert client.get(PAGE).status_code == 403
    assert "database-health" not in client.get("/admin/").content.decode()

    client.force_login(supervisor_sam)
    assert 'href="/admin/database-health/"' in client.get("/admin/").content.decode()


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(PAGE)

    assert response.status_code == 302 and "login" in response["Location"]


# --- /metrics ---------------------------------------------------------------------------------------------------


def test_metrics_count_the_blocked_session_and_its_wait(client):
    with lock_wait():
        during = scrape(client)
    after = scrape(client)

    assert during[("workflow_db_blocked_sessions", ())] == 1
    assert during[("workflow_db_longest_lock_wait_seconds", ())] >= 0
    assert after[("workflow_db_blocked_sessions", ())] == 0
    assert after[("workflow_db_longest_lock_wait_seconds", ())] == 0


def test_metrics_export_connections_deadlocks_dead_tuples_and_no_replica_lag_without_standbys(client):
    found = scrape(client)

    assert found[("workflow_db_connections", (("state", "active"),))] >= 1
    assert found[("workflow_db_max_connections", ())] >= found[("workflow_db_server_connections", ())] > 0
    assert ("workflow_db_deadlocks_total", ()) in found
    assert found[("workflow_db_replicas", ())] == 0
    assert not [key for key in found if key[0] == "workflow_db_replication_lag_seconds"]
    assert ("workflow_db_dead_tuples", (("schema", "flowable"), ("table", "workflow_tasks"))) in found


def test_metrics_count_a_statement_running_past_the_threshold(client, sleeping_session, settings):
    settings.DB_SLOW_QUERY_MS = 1
    eventually(lambda: scrape(client)[("workflow_db_slow_statements", ())], lambda n: n >= 1)

    settings.DB_SLOW_QUERY_MS = 3_600_000

    assert scrape(client)[("workflow_db_slow_statements", ())] == 0


def test_a_deadlock_is_counted(client):
    before = scrape(client)[("workflow_db_deadlocks_total", ())]
    first, second = app_session(), app_session()
    rows = ("intake", "triage")
    try:
        first.execute("UPDATE queues.workflow_queues SET current_load = current_load WHERE queue_name = %s", [rows[0]])
        second.execute("UPDATE queues.workflow_queues SET current_load = current_load WHERE queue_name = %s", [rows[1]])
        failures = []

        def cross(session, name):
            try:
                session.execute(
                    "UPDATE queues.workflow_queues SET current_load = current_load WHERE queue_name = %s", [name]
                )
            except psycopg.errors.DeadlockDetected as error:
                failures.append(error)
            finally:
                session.rollback()

        threads = [
            threading.Thread(target=cross, args=(first, rows[1])),
            threading.Thread(target=cross, args=(second, rows[0])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SETTLE_SECONDS)
        assert len(failures) == 1
    finally:
        first.close()
        second.close()

    eventually(lambda: scrape(client)[("workflow_db_deadlocks_total", ())], lambda n: n == before + 1)
