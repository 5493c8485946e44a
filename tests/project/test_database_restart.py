"""A real PostgreSQL restarted under load: clients get 503 with Retry-After during the outage, never a 500, and
nothing they were told succeeded is lost.

The server is a real gunicorn with bin/run's threaded workers, on a throwaway cluster (initdb on a free port
under a temporary folder) holding a copy of the test database, so that stopping it disturbs nothing else.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.project.clusters import ThrowawayCluster, free_port, postgres_bin

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 8
TASKS = 160
RUN_LIMIT_SECONDS = 120


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
        dump = subprocess.run([postgres_bin("pg_dump"), "-Fc", test_database_url], check=True, capture_output=True)
        subprocess.run(
            # The throwaway cluster has none of our roles: its superuser owns everything and serves the app.
            [postgres_bin("pg_restore"), "--no-owner", "--no-privileges", "-d", cluster.url],
            input=dump.stdout,
            check=True,
            capture_output=True,
        )
        yield cluster
    finally:
        cluster.remove()


def cluster_env(cluster: ThrowawayCluster) -> dict:
    """The environment of a process that uses the throwaway cluster: its superuser, none of our roles."""
    env = {**os.environ, "DATABASE_URL": cluster.url}
    for name in ("DATABASE_SET_ROLE", "DATABASE_MIGRATE_URL", "DATABASE_ADMIN_URL"):
        env.pop(name, None)
    return env


@pytest.fixture
def server(cluster):
    port = free_port()
    env = {**cluster_env(cluster), "CONN_MAX_AGE": "60", "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "workflow_project.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--graceful-timeout",
            "5",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if request(port, "GET", "/healthz", token=None)[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def request(port: int, method: str, path: str, *, token: str | None, body: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return response.status, response.getheader("Retry-After"), payload
    finally:
        connection.close()


def test_a_database_restart_under_load_gives_503s_not_500s_and_loses_nothing(cluster, server):
    statuses: Counter = Counter()
    missing_retry_after: list[tuple[str, int]] = []
    completed_ok: set[int] = set()
    lock = threading.Lock()
    stop = threading.Event()

    token = server_token(cluster)
    supervisor_token = server_token(cluster, "supervisor")
    for index in range(TASKS):
        status, _, payload = request(
            server,
            "POST",
            "/api/workflow/tasks/",
            token=supervisor_token,
            body={"queue": "intake", "name": f"Restart drill {index}"},
        )
        assert status == 201, payload

    def record(label: str, status: int, retry_after: str | None) -> None:
        with lock:
            statuses[status] += 1
            if status == 503 and not retry_after:
                missing_retry_after.append((label, status))

    def call(label: str, method: str, path: str, body=None):
        try:
            status, retry_after, payload = request(server, method, path, token=token, body=body)
        except OSError:
            return None, b""  # the connection itself failed: nothing was answered, nothing to count
        record(label, status, retry_after)
        return status, payload

    def client() -> None:
        idle = 0
        while not stop.is_set() and idle < 20:
            status, payload = call("claim", "POST", "/api/workflow/tasks/claim/next")
            if status == 204:
                idle += 1
                time.sleep(0.05)
                continue
            if status != 200:
                time.sleep(0.1)
                continue
            idle = 0
            task_id = json.loads(payload)["id"]
            while not stop.is_set():
                status, _ = call("complete", "POST", f"/api/workflow/tasks/{task_id}/complete", {"variables": {}})
                if status == 200:
                    with lock:
                        completed_ok.add(task_id)
                    break
                if status == 409:  # completed by an earlier try whose answer was lost with the connection
                    break
                time.sleep(0.1)

    def wait_until(condition, failure: str) -> None:
        """Poll for something the clients do (not for a length of time), under the run's deadline."""
        deadline = time.monotonic() + RUN_LIMIT_SECONDS
        while not condition():
            assert time.monotonic() < deadline, f"{failure}: {statuses}"
            time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(completed_ok) >= CLIENTS, "the clients never got to work")
    cluster.stop()
    # The outage lasts until the clients have seen it, however slow the machine: one 503 per client, in all.
    wait_until(lambda: statuses[503] >= CLIENTS, "the clients never saw the outage")
    cluster.start()
    deadline = time.monotonic() + RUN_LIMIT_SECONDS
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    assert [code for code in statuses if code >= 500 and code != 503] == [], statuses
    assert statuses[503] > 0, f"the outage was not seen by any client: {statuses}"
    assert missing_retry_after == []
    # A claim whose answer was lost with the connection leaves a CLAIMED task: the client finds it in its list.
    status, _, payload = request(server, "GET", "/api/workflow/tasks/?assignee=me&status=CLAIMED", token=token)
    assert status == 200
    for task in json.loads(payload)["results"]:
        assert (
            request(server, "POST", f"/api/workflow/tasks/{task['id']}/complete", token=token, body={"variables": {}})[
                0
            ]
            == 200
        )
        completed_ok.add(task["id"])
    facts = cluster_facts(cluster)
    assert completed_ok <= facts["completed"], "a completion the client was told of is missing"
    assert facts["completed"] == facts["drill"], "every drill task ends completed"
    assert facts["completed_events"] == len(facts["drill"]), "one COMPLETED history row per task"
    integrity = subprocess.run(
        [sys.executable, "manage.py", "check_integrity"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=cluster_env(cluster),
        timeout=120,
    )
    assert integrity.returncode == 0, integrity.stdout + integrity.stderr


def server_token(cluster: ThrowawayCluster, username: str = "alice") -> str:
    """A token made in the cluster's database by the documented command (its key is the last word printed)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_token", username],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=cluster_env(cluster),
        timeout=120,
        check=True,
    )
    return result.stdout.split()[-1]


def cluster_facts(cluster: ThrowawayCluster) -> dict:
    import psycopg

    with psycopg.connect(cluster.url) as connection:
        drill = {
            row[0]
            for row in connection.execute(
                "SELECT task_id FROM flowable.workflow_tasks WHERE name LIKE 'Restart drill %%'"
            )
        }
        completed = {
            row[0]
            for row in connection.execute(
                "SELECT task_id FROM flowable.workflow_tasks WHERE name LIKE 'Restart drill %%' AND status = 'COMPLETED'"
            )
        }
        events = connection.execute(
            "SELECT count(*) FROM flowable.task_history h JOIN flowable.workflow_tasks t USING (task_id)"
            " WHERE t.name LIKE 'Restart drill %%' AND h.event_type = 'COMPLETED'"
        ).fetchone()[0]
    return {"drill": drill, "completed": completed, "completed_events": events}
