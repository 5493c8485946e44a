"""A real streaming replica: lag-tolerant reads go to it, in the user's row scope; a user's writes and the reads
right after them go to the primary; a lagging or stopped replica leaves the reads to the primary (core/replica.py).

The primary is a throwaway cluster (initdb allows replication from this machine; the shared cluster's pg_hba.conf
does not) holding a copy of the test database with our roles, so row-level security applies as in production; the
standby is its copy by pg_basebackup -R. The application is a real gunicorn on both. Both servers log every
statement: which server ran a request's reads is read from their logs, and a row the paused standby has not
replayed tells a replica's answer from the primary's.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import pytest

from core.db_roles import roles_ensure
from core.timeouts import session_timeouts
from tests.conftest import DEMO_PASSWORD, url_of_test_database
from tests.project.clusters import ThrowawayCluster, free_port, postgres_bin

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MAX_LAG_SECONDS = 10
WAIT_LIMIT_SECONDS = 120
DATABASE = "workflow"
APP_LOGIN = "workflow_maintenance"  # acting as workflow_app (DATABASE_SET_ROLE), as the tests and workers do

TASKS_READ = 'FROM "flowable"."workflow_tasks"'
DASHBOARD_READ = "FROM flowable.mv_queue_performance"
METRICS_READ = "LEFT JOIN flowable.mv_queue_performance"


@dataclass
class Replication:
    primary: ThrowawayCluster
    standby: ThrowawayCluster
    server: int  # checks the replica before every lag-tolerant read
    trusting_server: int  # trusts its first check for an hour: a replica that stops fails under its reads
    tokens: dict[str, str]
    user_ids: dict[str, int]
    task_ids: dict[str, int]

    def superuser_url(self, cluster: ThrowawayCluster) -> str:
        return f"postgresql://postgres@127.0.0.1:{cluster.port}/{DATABASE}"


def database_copy() -> bytes:
    url = url_of_test_database()
    return subprocess.run([postgres_bin("pg_dump"), "-Fc", url], check=True, capture_output=True).stdout


def server_env(replication_ports: tuple[int, int], **settings: str) -> dict:
    primary, standby = replication_ports
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{APP_LOGIN}@127.0.0.1:{primary}/{DATABASE}",
        "DATABASE_SET_ROLE": "workflow_app",
        "DATABASE_REPLICA_URL": f"postgresql://{APP_LOGIN}@127.0.0.1:{standby}/{DATABASE}",
        "DATABASE_REPLICA_MAX_LAG_SECONDS": str(MAX_LAG_SECONDS),
        "CONN_MAX_AGE": "60",
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    for name in ("DATABASE_MIGRATE_URL", "DATABASE_ADMIN_URL"):
        env.pop(name, None)
    return env


def start_server(env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "workflow_project.wsgi", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "1", "--threads", "4", "--graceful-timeout", "5"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port


def wait_until(condition, failure: str) -> None:
    """Poll for a state of the servers (not for a length of time), under a generous deadline."""
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


def call(port: int, method: str, path: str, *, token: str | None = None, body=None, headers=None):
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Token {token}"
        payload = body if isinstance(body, str) or body is None else json.dumps(body)
        client.request(method, path, body=payload, headers=sent)
        response = client.getresponse()
        return response.status, response.read().decode(), response
    finally:
        client.close()


def answers(port: int) -> bool:
    try:
        return call(port, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def sql(url: str, statement: str, params=None):
    with psycopg.connect(url, autocommit=True) as db:
        cursor = db.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def tokens_made(env: dict, usernames: list[str]) -> dict[str, str]:
    """API tokens made in the primary's database by the service the API's token command uses."""
    script = (
        "import json\n"
        "from entitlements.models import User\n"
        "from entitlements.row_scope import system_scope\n"
        "from entitlements.services import api_token_create\n"
        "with system_scope():\n"
        f"    keys = {{n: api_token_create(user=User.objects.get(username=n)).key for n in {usernames!r}}}\n"
        "print(json.dumps(keys))\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def replication(django_db_setup, django_db_blocker):
    primary = ThrowawayCluster(prefix="replica-primary-")
    standby = None
    servers: list[subprocess.Popen] = []
    try:
        primary.start()
        roles_ensure(
            f"postgresql://postgres@127.0.0.1:{primary.port}/postgres", database=DATABASE, timeouts=session_timeouts()
        )
        with django_db_blocker.unblock():
            dump = database_copy()
        subprocess.run(
            # As the superuser, keeping the owners: the application role is no table's owner, as in production.
            [
                postgres_bin("pg_restore"),
                "--exit-on-error",
                "-d",
                f"postgresql://postgres@127.0.0.1:{primary.port}/{DATABASE}",
            ],
            input=dump,
            check=True,
            capture_output=True,
        )
        superuser = f"postgresql://postgres@127.0.0.1:{primary.port}/{DATABASE}"
        # Every statement goes to the server's log (from now on, and on the standby, which copies this setting).
        sql(superuser, "ALTER SYSTEM SET log_statement = 'all'")
        sql(superuser, "ALTER SYSTEM SET log_line_prefix = '%m [%p] %u '")
        sql(superuser, "SELECT pg_reload_conf()")
        standby = ThrowawayCluster(prefix="replica-standby-", standby_of=primary)
        standby.start()

        ports = (primary.port, standby.port)
        tokens = tokens_made(server_env(ports), ["alice", "supervisor"])
        for settings in ({"DATABASE_REPLICA_CHECK_SECONDS": "0"}, {"DATABASE_REPLICA_CHECK_SECONDS": "3600"}):
            servers.append(start_server(server_env(ports, **settings)))
        (_, server), (_, trusting_server) = servers
        wait_until(lambda: answers(server) and answers(trusting_server), "gunicorn did not start")

        user_ids = dict(
            sql(superuser, "SELECT username, id FROM entitlements.users WHERE username IN ('alice', 'supervisor')")
        )
        task_ids = {}
        for queue in ("intake", "legal-review"):
            status, body, _ = call(
                server,
                "POST",
                "/api/workflow/tasks/",
                token=tokens["supervisor"],
                body={"queue": queue, "name": f"Replica drill in {queue}"},
            )
            assert status == 201, body
            task_ids[queue] = json.loads(body)["id"]
        yield Replication(primary, standby, server, trusting_server, tokens, user_ids, task_ids)
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(timeout=30)
        if standby is not None:
            standby.remove()
        primary.remove()


# --- what the servers did ----------------------------------------------------------------------------------------


class Logs:
    """The statements each cluster ran from a point on."""

    def __init__(self, replication: Replication):
        self.clusters = {"primary": replication.primary, "standby": replication.standby}
        self.marks = {name: self._size(cluster) for name, cluster in self.clusters.items()}

    @staticmethod
    def _size(cluster: ThrowawayCluster) -> int:
        return (cluster.folder / "server.log").stat().st_size

    def since(self, name: str) -> str:
        with open(self.clusters[name].folder / "server.log", "rb") as log:
            log.seek(self.marks[name])
            return log.read().decode(errors="replace")


def read_where(replication: Replication, request) -> tuple[object, dict[str, str]]:
    """Make the request; return its result and what each cluster logged meanwhile."""
    logs = Logs(replication)
    result = request()
    return result, {name: logs.since(name) for name in logs.clusters}


def ran_on(logged: dict[str, str], statement: str) -> set[str]:
    return {name for name, text in logged.items() if statement in text}


def task_list(replication: Replication, username: str, *, port: int | None = None) -> list[int]:
    status, body, _ = call(
        port or replication.server, "GET", "/api/workflow/tasks/?ordering=task_id", token=replication.tokens[username]
    )
    assert status == 200, body
    return [task["id"] for task in json.loads(body)["results"]]


def open_in_intake(replication: Replication, username: str) -> int:
    status, body, _ = call(replication.server, "GET", "/api/queues/", token=replication.tokens[username])
    assert status == 200, body
    return {queue["queue_name"]: queue["open"] for queue in json.loads(body)}["intake"]


def queue_figures_refreshed(replication: Replication) -> None:
    """Refresh the dashboards on the primary: GET /api/queues/ counts as of their last refresh."""
    sql(replication.superuser_url(replication.primary), "SELECT flowable.dashboards_refresh()")


def metrics(replication: Replication) -> dict[str, float]:
    status, body, _ = call(replication.server, "GET", "/metrics")
    assert status == 200, body
    return {
        match["name"]: float(match["value"])
        for match in re.finditer(r"^(?P<name>workflow_replica_\w+) (?P<value>\S+)$", body, re.MULTILINE)
    }


def task_create(replication: Replication, name: str) -> int:
    status, body, _ = call(
        replication.server,
        "POST",
        "/api/workflow/tasks/",
        token=replication.tokens["supervisor"],
        body={"queue": "intake", "name": name},
    )
    assert status == 201, body
    return json.loads(body)["id"]


def tasks_in_row_scope(url: str, user_id: int) -> list[int]:
    """The tasks row-level security lets the application role see in the user's row scope, on that server."""
    with psycopg.connect(url) as db:
        db.execute("SET ROLE workflow_app")
        db.execute("SELECT entitlements.row_scope_set(%s, '')", [user_id])
        return [row[0] for row in db.execute("SELECT task_id FROM flowable.workflow_tasks ORDER BY task_id")]


# --- the standby's replay ----------------------------------------------------------------------------------------


def replayed_everything(replication: Replication) -> bool:
    (primary_position,) = sql(replication.superuser_url(replication.primary), "SELECT pg_current_wal_lsn()")[0]
    (replayed,) = sql(
        replication.superuser_url(replication.standby),
        "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
        [primary_position],
    )[0]
    return replayed


def replay_paused_after_a_fresh_commit(replication: Replication) -> None:
    """Pause replay right after the standby replayed a commit made now: its lag then counts from now."""
    sql(replication.superuser_url(replication.primary), "SELECT txid_current()")  # a transaction with an id commits
    wait_until(lambda: replayed_everything(replication), "the standby did not catch up")
    standby = replication.superuser_url(replication.standby)
    sql(standby, "SELECT pg_wal_replay_pause()")
    wait_until(lambda: sql(standby, "SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused", "replay did not pause")


@pytest.fixture
def replica_serving(replication):
    """Each test starts with the standby running, replaying, caught up, and serving the first server's reads."""
    yield replication
    if not (replication.standby.folder / "data" / "postmaster.pid").exists():
        replication.standby.start()
    wait_until(lambda: answers_sql(replication.superuser_url(replication.standby)), "the standby did not start")
    sql(replication.superuser_url(replication.standby), "SELECT pg_wal_replay_resume()")


def answers_sql(url: str) -> bool:
    try:
        sql(url, "SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


@pytest.fixture
def caught_up(replica_serving):
    replication = replica_serving
    wait_until(lambda: replayed_everything(replication), "the standby did not catch up")
    wait_until(
        lambda: metrics(replication).get("workflow_replica_reads") == 1, "the server does not read on the replica"
    )
    return replication


# --- the tests ---------------------------------------------------------------------------------------------------


def test_a_caseworkers_list_is_read_on_the_replica_in_her_row_scope(caught_up):
    replication = caught_up
    alice = replication.user_ids["alice"]

    listed, logged = read_where(replication, lambda: task_list(replication, "alice"))

    assert ran_on(logged, TASKS_READ) == {"standby"}
    assert f"SELECT entitlements.row_scope_set({alice}, '')" in logged["standby"], "her row scope, on the replica"
    # Row-level security on the replica shows her exactly what it shows her on the primary: intake, not legal.
    assert replication.task_ids["intake"] in listed and replication.task_ids["legal-review"] not in listed
    for cluster in (replication.primary, replication.standby):
        assert tasks_in_row_scope(replication.superuser_url(cluster), alice) == listed
    assert set(task_list(replication, "supervisor")) >= set(replication.task_ids.values())


def test_reports_are_read_on_the_replica(caught_up):
    replication = caught_up

    queue_figures_refreshed(replication)
    wait_until(lambda: replayed_everything(replication), "the standby did not replay the refresh")
    open_count, logged = read_where(replication, lambda: open_in_intake(replication, "alice"))
    assert ran_on(logged, DASHBOARD_READ) == {"standby"}
    assert open_count == len(set(task_list(replication, "alice")) - {replication.task_ids["legal-review"]}) >= 1

    gauges, logged = read_where(replication, lambda: metrics(replication))
    assert ran_on(logged, METRICS_READ) == {"standby"}
    assert gauges["workflow_replica_up"] == 1 and gauges["workflow_replica_reads"] == 1
    assert gauges["workflow_replica_lag_seconds"] <= MAX_LAG_SECONDS

    session = supervisor_session(replication)
    wait_until(lambda: replayed_everything(replication), "the standby did not replay the login")
    (status, page), logged = read_where(replication, lambda: admin_index(replication, session))
    assert status == 200 and "Load versus capacity" in page, page[:500]
    assert ran_on(logged, DASHBOARD_READ) == {"standby"}


def test_a_users_write_and_their_reads_after_it_go_to_the_primary(caught_up):
    replication = caught_up
    queue_figures_refreshed(replication)
    wait_until(lambda: replayed_everything(replication), "the standby did not replay the refresh")
    replay_paused_after_a_fresh_commit(replication)

    written, logged = read_where(replication, lambda: task_create(replication, "Written while replay is paused"))
    assert "INSERT INTO" in logged["primary"]

    # The writer reads it back at once, from the primary; anyone else's lag-tolerant reads still go to the replica,
    # which has not replayed it.
    listed, logged = read_where(replication, lambda: task_list(replication, "supervisor"))
    assert written in listed
    assert ran_on(logged, TASKS_READ) == {"primary"}

    listed, logged = read_where(replication, lambda: task_list(replication, "alice"))
    assert written not in listed and replication.task_ids["intake"] in listed
    assert ran_on(logged, TASKS_READ) == {"standby"}
    # The queue figures as of a refresh on the primary, which the paused standby has not replayed.
    queue_figures_refreshed(replication)
    assert open_in_intake(replication, "supervisor") == open_in_intake(replication, "alice") + 1


def test_a_replica_lagging_past_the_bound_leaves_reads_to_the_primary_and_metrics_show_it(caught_up):
    replication = caught_up
    replay_paused_after_a_fresh_commit(replication)
    written = task_create(replication, "Written while the replica lags")
    standby = replication.superuser_url(replication.standby)
    wait_until(
        lambda: sql(
            standby, "SELECT now() - pg_last_xact_replay_timestamp() > %s * interval '1 second'", [MAX_LAG_SECONDS]
        )[0][0],
        "the standby never lagged past the bound",
    )

    listed, logged = read_where(replication, lambda: task_list(replication, "alice"))
    assert written in listed
    assert ran_on(logged, TASKS_READ) == {"primary"}
    gauges, logged = read_where(replication, lambda: metrics(replication))
    assert ran_on(logged, METRICS_READ) == {"primary"}
    assert gauges["workflow_replica_up"] == 1 and gauges["workflow_replica_reads"] == 0
    assert gauges["workflow_replica_lag_seconds"] > MAX_LAG_SECONDS

    sql(standby, "SELECT pg_wal_replay_resume()")
    wait_until(lambda: metrics(replication).get("workflow_replica_reads") == 1, "the caught-up replica is not used")
    listed, logged = read_where(replication, lambda: task_list(replication, "alice"))
    assert written in listed
    assert ran_on(logged, TASKS_READ) == {"standby"}


def test_with_the_replica_stopped_reads_still_succeed_from_the_primary(caught_up):
    replication = caught_up
    servers = (replication.server, replication.trusting_server)
    before = {}
    for port in servers:
        before[port], logged = read_where(replication, partial(task_list, replication, "alice", port=port))
        assert ran_on(logged, TASKS_READ) == {"standby"}

    replication.standby.stop()

    # The trusting server still believes its check: the read fails on the replica and runs again on the primary.
    # The other one finds the replica down before it reads.
    for port in servers:
        listed, logged = read_where(replication, partial(task_list, replication, "alice", port=port))
        assert listed == before[port]
        assert ran_on(logged, TASKS_READ) == {"primary"}
    assert open_in_intake(replication, "alice") >= 1
    gauges = metrics(replication)
    assert gauges["workflow_replica_up"] == 0 and gauges["workflow_replica_reads"] == 0
    assert "workflow_replica_lag_seconds" not in gauges


# --- a supervisor's browser --------------------------------------------------------------------------------------


def supervisor_session(replication: Replication) -> dict[str, str]:
    status, page, response = call(replication.server, "GET", "/accounts/login/")
    assert status == 200
    cookies = cookies_of(response)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    form = urlencode({"username": "supervisor", "password": DEMO_PASSWORD, "csrfmiddlewaretoken": csrf})
    status, _, response = call(
        replication.server,
        "POST",
        "/accounts/login/",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie_header(cookies)},
    )
    assert status == 302, "the supervisor could not log in"
    return {**cookies, **cookies_of(response)}


def admin_index(replication: Replication, cookies: dict[str, str]) -> tuple[int, str]:
    status, page, _ = call(replication.server, "GET", "/admin/", headers={"Cookie": cookie_header(cookies)})
    return status, page


def cookies_of(response) -> dict[str, str]:
    found = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())
