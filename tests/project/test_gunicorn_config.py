"""The gunicorn hook loads every view before freezing the collector's view of long-lived objects."""

import gc
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from workflow_project import gunicorn_config

PROJECT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_post_worker_init_freezes_the_loaded_application():
    try:
        gunicorn_config.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 0
        assert "tasks.api" in sys.modules and "cases.views" in sys.modules
    finally:
        gc.unfreeze()


@pytest.mark.slow
def test_gunicorn_serves_with_the_shared_config(test_database_url):
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "workflow_project.wsgi",
            "-c",
            "python:workflow_project.gunicorn_config",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "2",
        ],
        cwd=PROJECT,
        env={**os.environ, "DATABASE_URL": test_database_url},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not answer /healthz"
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
