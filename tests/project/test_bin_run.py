"""bin/run's services stop on Ctrl-C within 5 s, and bin/stop stops them and the embedded PostgreSQL, saying so.

bin/run --no-setup starts the web server, the worker and beat on the test database (set up by the session), as the
last step of a full bin/run does; Ctrl-C is a terminal's: SIGINT to the whole foreground process group.
"""

import http.client
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from django_celery_beat.models import PeriodicTask

PROJECT = Path(__file__).resolve().parents[2]
CTRL_C_LIMIT_SECONDS = 5
START_LIMIT_SECONDS = 120
# What bin/test's environment points at the session's own database or broker, which bin/run must not use here.
NOT_INHERITED = {"CELERY_BROKER_URL", "DATABASE_ADMIN_URL", "DATABASE_MIGRATE_URL", "DATABASE_APP_URL",
                 "DATABASE_REPORTING_URL", "DATABASE_MAINTENANCE_URL", "DATABASE_REPLICA_URL"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def session_processes(session_id: int) -> list[psutil.Process]:
    alive = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session_id and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return alive


class Run:
    """bin/run --no-setup in a session of its own, with SIGINT at its default as a terminal's shell leaves it."""

    def __init__(self, database_url: str, var_dir: Path):
        self.var_dir = var_dir
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update(DATABASE_URL=database_url, WORKFLOW_VAR_DIR=str(var_dir), HOST="127.0.0.1", PORT=str(self.port))
        self.output_file = (var_dir.parent / "bin-run.out").open("w+")
        self.process = subprocess.Popen(
            ["bash", "bin/run", "--no-setup"],
            cwd=PROJECT,
            env=env,
            stdout=self.output_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def output(self) -> str:
        self.output_file.seek(0)
        return self.output_file.read() + "\n--- celery.log ---\n" + self.celery_log()

    def celery_log(self) -> str:
        log = self.var_dir / "celery.log"
        return log.read_text() if log.exists() else ""

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_LIMIT_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                    if response.status == 200 and " ready." in self.celery_log():
                        return
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail("bin/run did not start:\n" + self.output())

    def keep_alive_connections(self, count=6) -> list[http.client.HTTPConnection]:
        """Browser-like kept-alive connections: each has been served, so every web worker has threads running."""
        connections = []
        for _ in range(count):
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            connection.request("GET", "/accounts/login/")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            connections.append(connection)
        return connections

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)

    def seconds_until_all_gone(self, limit: float) -> float:
        started = time.monotonic()
        while session_processes(self.process.pid) and time.monotonic() - started < limit + 5:
            time.sleep(0.05)
        return time.monotonic() - started

    def kill_leftovers(self) -> None:
        for process in session_processes(self.process.pid):
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait(timeout=10)
        self.output_file.close()


@pytest.fixture
def no_periodic_jobs(committed_db):
    """Beat runs but sends nothing: the demo's schedules would otherwise run jobs against the test database."""
    enabled = list(PeriodicTask.objects.filter(enabled=True).values_list("pk", flat=True))
    PeriodicTask.objects.filter(pk__in=enabled).update(enabled=False)
    yield
    PeriodicTask.objects.filter(pk__in=enabled).update(enabled=True)


@pytest.fixture
def bin_run(no_periodic_jobs, test_database_url, tmp_path):
    run = Run(test_database_url, tmp_path / "var")
    try:
        run.wait_until_serving()
        yield run
    finally:
        run.kill_leftovers()


@pytest.mark.slow
def test_ctrl_c_stops_web_worker_and_beat_within_five_seconds_without_a_sigkill(bin_run):
    connections = bin_run.keep_alive_connections()
    # The terminal's SIGINT reaches bin/run alone, which stops each service once: a gunicorn worker sent both it and
    # its master's SIGQUIT can deadlock and be killed by the master ("Worker was sent SIGKILL! Perhaps out of memory?").
    services = [p for p in session_processes(bin_run.process.pid) if p.pid != bin_run.process.pid]
    commands = " ".join(" ".join(p.cmdline()) for p in services)
    assert "bin/gunicorn" in commands and "bin/celery" in commands, commands
    assert all(os.getpgid(p.pid) != bin_run.process.pid for p in services), services

    bin_run.ctrl_c()
    seconds = bin_run.seconds_until_all_gone(CTRL_C_LIMIT_SECONDS)

    output = bin_run.output()
    assert seconds < CTRL_C_LIMIT_SECONDS, output
    assert bin_run.process.wait(timeout=5) == 130
    assert "SIGKILL" not in output and "Perhaps out of memory" not in output, output
    # Every web worker left by itself (none was killed, by gunicorn or by bin/run's time limit). The worker and beat
    # may take up to the limit to finish and be killed at it on a busy machine: either way they are gone in time.
    assert "Stopped the web server (gunicorn, pid" in output, output
    assert "the Celery worker and beat" in output, output
    for connection in connections:
        connection.close()


@pytest.mark.slow
def test_bin_stop_stops_what_bin_run_started_and_says_what(bin_run):
    pids = {
        "web": int((bin_run.var_dir / "run" / "gunicorn.pid").read_text()),
        "worker": int((bin_run.var_dir / "run" / "celery.pid").read_text()),
    }

    stopped = subprocess.run(
        ["bash", "bin/stop"],
        cwd=PROJECT,
        env={**os.environ, "WORKFLOW_VAR_DIR": str(bin_run.var_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert stopped.returncode == 0, stopped.stderr
    assert f"Stopped the web server (gunicorn, pid {pids['web']})." in stopped.stdout
    assert f"the Celery worker and beat (celery, pid {pids['worker']})" in stopped.stdout
    assert "embedded PostgreSQL" in stopped.stdout and "is not running" in stopped.stdout
    assert bin_run.seconds_until_all_gone(CTRL_C_LIMIT_SECONDS) < CTRL_C_LIMIT_SECONDS, bin_run.output()
    assert not psutil.pid_exists(pids["web"]) and not psutil.pid_exists(pids["worker"])


def test_bin_stop_with_nothing_running_says_so(tmp_path):
    stopped = subprocess.run(
        ["bash", "bin/stop"],
        cwd=PROJECT,
        env={**os.environ, "WORKFLOW_VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert stopped.returncode == 0, stopped.stderr
    assert "No web server or Celery worker of bin/run is running." in stopped.stdout
    assert f"The embedded PostgreSQL ({tmp_path / 'var' / 'pgdata'}) is not running." in stopped.stdout
