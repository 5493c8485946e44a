"""What the drills that disturb a real database under load share: a copy of the test database on another server, a
real gunicorn (bin/run's threaded workers) in front of it, clients claiming and completing tasks through the API
while the database goes away, and what the database holds afterwards.

Used by test_database_restart.py (one server stopped and started) and test_failover.py (a pg_auto_failover
formation losing its primary)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.project.clusters import free_port, postgres_bin

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 8
RUN_LIMIT_SECONDS = 120  # a deadline on each wait for the clients, not a measure of anything


def restore_test_database(test_database_url: str, url: str) -> None:
    """Restore the test database (the demo organisation and what it holds) into the empty database at `url`. The
    server there has none of our roles: its superuser owns everything and serves the app."""
    dump = subprocess.run([postgres_bin("pg_dump"), "-Fc", test_database_url], check=True, capture_output=True)
    subprocess.run(
        [postgres_bin("pg_restore"), "--no-owner", "--no-privileges", "-d", url],
        input=dump.stdout,
        check=True,
        capture_output=True,
    )


def app_env(url: str) -> dict:
    """The environment of a process of the application on another server: its superuser, none of our roles."""
    env = {**os.environ, "DATABASE_URL": url}
    for name in ("DATABASE_SET_ROLE", "DATABASE_MIGRATE_URL", "DATABASE_ADMIN_URL"):
        env.pop(name, None)
    return env


def manage(url: str, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    """A management command run against the database at `url`, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=app_env(url),
        timeout=120,
        check=check,
    )


def api_token(url: str, username: str = "alice") -> str:
    """A token made by the documented command (its key is the last word printed)."""
    return manage(url, "create_api_token", username).stdout.split()[-1]


@contextmanager
def gunicorn_serving(url: str, log: Path) -> Iterator[int]:
    """gunicorn with bin/run's threaded workers and persistent connections, on a free port, writing its log to
    `log` (a pipe nobody reads would fill up and stall the workers); yields the port."""
    port = free_port()
    env = {**app_env(url), "CONN_MAX_AGE": "60", "LOG_LEVEL": "WARNING"}
    with open(log, "ab") as log_file:
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
            stderr=log_file,
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


def drill_tasks_create(port: int, supervisor_token: str, *, count: int, name: str) -> None:
    """`count` intake tasks named "<name> <n>", made through the API by a supervisor."""
    for index in range(count):
        status, _, payload = request(
            port,
            "POST",
            "/api/workflow/tasks/",
            token=supervisor_token,
            body={"queue": "intake", "name": f"{name} {index}"},
        )
        assert status == 201, payload


class ClaimingClients:
    """CLIENTS threads, each claiming the next task and completing it through the API, retrying a refused answer,
    until none is left. They count every status answered, and keep what they were told succeeded."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.statuses: Counter = Counter()
        self.missing_retry_after: list[str] = []
        self.claimed_ok: list[int] = []  # a task twice here was claimed twice
        self.completed_ok: set[int] = set()
        self.last_success_sent_at = float("-inf")  # time.monotonic() when the latest request answered 200 was sent
        self.lock = threading.Lock()
        self.stop = threading.Event()
        # Daemon threads: a failed assertion ends the test with them still running, and must not hang pytest.
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(CLIENTS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def call(self, label: str, method: str, path: str, body=None):
        sent_at = time.monotonic()
        try:
            status, retry_after, payload = request(self.port, method, path, token=self.token, body=body)
        except OSError:
            return None, b""  # the connection itself failed: nothing was answered, nothing to count
        with self.lock:
            self.statuses[status] += 1
            if status == 503 and not retry_after:
                self.missing_retry_after.append(label)
            if status == 200:
                self.last_success_sent_at = max(self.last_success_sent_at, sent_at)
        return status, payload

    def client(self) -> None:
        idle = 0
        while not self.stop.is_set() and idle < 20:
            status, payload = self.call("claim", "POST", "/api/workflow/tasks/claim/next")
            if status == 204:
                idle += 1
                time.sleep(0.05)
                continue
            if status != 200:
                time.sleep(0.1)
                continue
            idle = 0
            task_id = json.loads(payload)["id"]
            with self.lock:
                self.claimed_ok.append(task_id)
            while not self.stop.is_set():
                status, _ = self.call("complete", "POST", f"/api/workflow/tasks/{task_id}/complete", {"variables": {}})
                if status == 200:
                    with self.lock:
                        self.completed_ok.add(task_id)
                    break
                if status == 409:  # completed by an earlier try whose answer was lost with the connection
                    break
                time.sleep(0.1)

    def wait_until(self, condition, failure: str, *, limit: float = RUN_LIMIT_SECONDS) -> None:
        """Poll for something the clients do (not for a length of time), under a deadline."""
        deadline = time.monotonic() + limit
        while not condition():
            if time.monotonic() > deadline:
                self.stop.set()
                pytest.fail(f"{failure}: {self.statuses}")
            time.sleep(0.05)

    def finish(self) -> None:
        """Let the clients run out of tasks, then stop them."""
        deadline = time.monotonic() + RUN_LIMIT_SECONDS
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def complete_left_claimed(self) -> None:
        """A claim whose answer was lost with the connection leaves a CLAIMED task: the client finds it in its list
        and completes it."""
        status, _, payload = request(
            self.port, "GET", "/api/workflow/tasks/?assignee=me&status=CLAIMED", token=self.token
        )
        assert status == 200, payload
        for task in json.loads(payload)["results"]:
            completed = request(
                self.port,
                "POST",
                f"/api/workflow/tasks/{task['id']}/complete",
                token=self.token,
                body={"variables": {}},
            )
            assert completed[0] == 200, completed
            self.completed_ok.add(task["id"])

    def server_errors(self) -> list[int]:
        """Statuses of 500 or more other than 503."""
        return [code for code in self.statuses if code >= 500 and code != 503]


def drill_facts(url: str, name: str) -> dict:
    """What the database at `url` holds of the drill's tasks (named "<name> <n>")."""
    pattern = f"{name} %"
    with psycopg.connect(url) as connection:
        drill = {
            row[0]
            for row in connection.execute("SELECT task_id FROM flowable.workflow_tasks WHERE name LIKE %s", [pattern])
        }
        completed = {
            row[0]
            for row in connection.execute(
                "SELECT task_id FROM flowable.workflow_tasks WHERE name LIKE %s AND status = 'COMPLETED'", [pattern]
            )
        }
        events = dict(
            connection.execute(
                "SELECT h.event_type, count(*) FROM flowable.task_history h JOIN flowable.workflow_tasks t"
                " USING (task_id) WHERE t.name LIKE %s GROUP BY h.event_type",
                [pattern],
            ).fetchall()
        )
        claims_per_task = Counter(
            row[0]
            for row in connection.execute(
                "SELECT h.task_id FROM flowable.task_history h JOIN flowable.workflow_tasks t USING (task_id)"
                " WHERE t.name LIKE %s AND h.event_type = 'CLAIMED'",
                [pattern],
            )
        )
    return {
        "drill": drill,
        "completed": completed,
        "completed_events": events.get("COMPLETED", 0),
        "claims_per_task": claims_per_task,
    }


def integrity_checked(url: str) -> None:
    """manage.py check_integrity passes on the database at `url`."""
    integrity = manage(url, "check_integrity", check=False)
    assert integrity.returncode == 0, integrity.stdout + integrity.stderr
