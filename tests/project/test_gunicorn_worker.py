"""workflow_project.gunicorn_worker: a new connection wakes one idle worker, not all of them.

Each test runs a real gunicorn with four workers, sends sequential requests (one connection each, as the sync
worker closes every connection) and counts each worker's context switches over them: a worker that is woken
for a connection it does not get still switches in and out.
"""
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.project.test_gunicorn_config import PROJECT, free_port
from workflow_project.gunicorn_worker import exclusive_wakeups_supported

pytestmark = pytest.mark.skipif(not exclusive_wakeups_supported(), reason="needs epoll with EPOLLEXCLUSIVE")

WORKERS = 4
REQUESTS = 300


def context_switches(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])


def get(port: int) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        connection.close()


def workers_of(server: subprocess.Popen) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        if len(pids) == WORKERS:
            return [int(pid) for pid in pids]
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not start {WORKERS} workers")


def switches_per_worker(worker_class: str) -> tuple[list[int], bytes]:
    """Each worker's context switches while REQUESTS sequential requests were served, and the last body."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "tests.project.hello_wsgi",
         "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS), "--worker-class", worker_class,
         "--log-level", "warning"],
        cwd=PROJECT, env={**os.environ}, start_new_session=True,
    )
    try:
        workers = workers_of(server)
        deadline = time.monotonic() + 30
        while True:
            try:
                get(port)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.1)
        time.sleep(0.5)  # every worker is waiting
        before = [context_switches(pid) for pid in workers]
        for _ in range(REQUESTS):
            body = get(port)
        after = [context_switches(pid) for pid in workers]
        return [a - b for a, b in zip(after, before)], body
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_connection_wakes_one_worker():
    switches, body = switches_per_worker("workflow_project.gunicorn_worker.ExclusiveAcceptWorker")

    assert body == b"hello"
    # Every request was served (each switches its worker at least once); the workers that did not serve stayed
    # asleep. With one client at a time, one or two workers serve and the rest are never woken.
    assert sum(switches) >= REQUESTS
    asleep = [count for count in switches if count < REQUESTS // 10]
    assert len(asleep) >= WORKERS - 2, switches


@pytest.mark.slow
def test_gunicorns_own_sync_worker_wakes_every_worker():
    """What the exclusive worker is for: with select() every idle worker wakes for every connection."""
    switches, body = switches_per_worker("sync")

    assert body == b"hello"
    assert all(count >= REQUESTS for count in switches), switches


@pytest.mark.slow
def test_the_exclusive_worker_stops_on_sigterm_with_its_workers():
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "tests.project.hello_wsgi",
         "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--worker-class", "workflow_project.gunicorn_worker.ExclusiveAcceptWorker", "--graceful-timeout", "20"],
        cwd=PROJECT, start_new_session=True, stderr=subprocess.PIPE, text=True,
    )
    workers = []
    try:
        deadline = time.monotonic() + 30
        while len(workers) < 2:
            assert time.monotonic() < deadline, "no workers"
            workers = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
            time.sleep(0.1)
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    # The signal pipe woke the waiting workers at once: no worker waited for its 15 s poll timeout.
    assert time.monotonic() - started < 10
    assert "Traceback" not in server.stderr.read()
