"""On the embedded PostgreSQL, commands say nothing on stderr but their own words; bin/stop stops that PostgreSQL.

The environment is a login without XDG_RUNTIME_DIR (a container, cron, ssh without a login manager), where
platformdirs warned on every command and pgserver logged "exiting <pid> remaining pids" at exit.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflow_project.embedded import embedded_postgres_pid, stop_embedded_postgres

PROJECT = Path(__file__).resolve().parents[2]
NOT_INHERITED = {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "XDG_RUNTIME_DIR", "DATABASE_SET_ROLE"}

# Django's logging set up, then the handler's stream closed before the interpreter exits, as pytest closes its
# captured stderr: an exit handler that logs then printed "--- Logging error --- ... I/O operation on closed file".
CLOSED_STREAM_AT_EXIT = """
import io, logging, django
django.setup()
closed = io.StringIO()
closed.close()
for handler in logging.getLogger().handlers:
    handler.setStream(closed)
"""


def embedded_env(var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED and not k.startswith("DATABASE_")}
    env["WORKFLOW_VAR_DIR"] = str(var_dir)
    return env


def manage(var_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=embedded_env(var_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A var directory whose embedded PostgreSQL the first command (returned) initialised and started."""
    var_dir = tmp_path_factory.mktemp("quiet") / "var"
    first = manage(var_dir, "check")
    try:
        yield var_dir, first
    finally:
        os.environ["WORKFLOW_VAR_DIR"] = str(var_dir)
        try:
            stop_embedded_postgres(PROJECT)
        finally:
            del os.environ["WORKFLOW_VAR_DIR"]


@pytest.mark.slow
def test_the_command_that_starts_the_embedded_postgresql_writes_nothing_to_stderr(embedded):
    var_dir, first = embedded

    assert first.returncode == 0, first.stderr
    assert "System check identified no issues" in first.stdout
    assert first.stderr == ""


@pytest.mark.slow
def test_a_command_on_the_running_embedded_postgresql_writes_nothing_to_stderr(embedded):
    var_dir, _ = embedded

    checked = manage(var_dir, "check_database")

    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("Connected to PostgreSQL")
    assert "XDG_RUNTIME_DIR" not in checked.stderr and "pgserver" not in checked.stderr
    assert checked.stderr == ""


@pytest.mark.slow
def test_nothing_logs_at_exit_to_a_stream_the_test_runner_closed(embedded):
    var_dir, _ = embedded

    ran = subprocess.run(
        [sys.executable, "-c", CLOSED_STREAM_AT_EXIT],
        cwd=PROJECT,
        env={**embedded_env(var_dir), "DJANGO_SETTINGS_MODULE": "workflow_project.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert ran.returncode == 0, ran.stderr
    assert "Logging error" not in ran.stderr and "closed file" not in ran.stderr
    assert ran.stderr == ""


@pytest.mark.slow
def test_bin_stop_stops_the_embedded_postgresql_and_says_so(embedded):
    var_dir, _ = embedded
    assert manage(var_dir, "check").returncode == 0  # running, whatever ran before
    pid = embedded_postgres_pid(var_dir / "pgdata")

    stopped = subprocess.run(
        ["bash", "bin/stop"], cwd=PROJECT, env=embedded_env(var_dir), capture_output=True, text=True, timeout=120
    )

    assert stopped.returncode == 0, stopped.stderr
    assert f"Stopped the embedded PostgreSQL (pid {pid}, {var_dir / 'pgdata'})." in stopped.stdout
    assert stopped.stderr == ""
    assert embedded_postgres_pid(var_dir / "pgdata") is None
