"""With no DATABASE_URL and no broker configured, the system runs on its embedded defaults."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cases import demo
from workflow_project.embedded import stop_embedded_postgres

PROJECT = Path(__file__).resolve().parents[2]


def manage(var_dir: Path, *args: str, timeout=300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"}}
    env["WORKFLOW_VAR_DIR"] = str(var_dir)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_embedded_postgres_and_filesystem_broker_serve_a_migrated_seeded_system(tmp_path):
    var_dir = tmp_path / "var"
    try:
        migrated = manage(var_dir, "migrate", "--no-input")
        assert migrated.returncode == 0, migrated.stderr
        seeded = manage(var_dir, "seed_demo", "--password", "embedded-pass-1")
        assert seeded.returncode == 0, seeded.stderr
        probe = manage(
            var_dir,
            "shell",
            "-c",
            "import json; from django.db import connection; from django.test import Client;"
            "from django.conf import settings;"
            "r = Client().get('/readyz');"
            "print(json.dumps({'host': settings.DATABASES['default']['HOST'], 'broker': settings.CELERY_BROKER_URL,"
            " 'users': __import__('entitlements.models').models.User.objects.count(), 'ready': r.status_code}))",
        )
        assert probe.returncode == 0, probe.stderr
        facts = json.loads(probe.stdout.strip().splitlines()[-1])
        assert facts["host"] == str(var_dir / "pgdata")
        assert facts["broker"] == "filesystem://"
        assert facts["users"] == len(demo.USERS) + 1  # and the worker account of the demo workflow's records check
        assert facts["ready"] == 200
    finally:
        stop_embedded_postgres_for(var_dir)


def stop_embedded_postgres_for(var_dir: Path) -> None:
    os.environ["WORKFLOW_VAR_DIR"] = str(var_dir)
    try:
        stop_embedded_postgres(PROJECT)
    finally:
        del os.environ["WORKFLOW_VAR_DIR"]


def test_filesystem_broker_keeps_every_folder_under_var(tmp_path, monkeypatch):
    from workflow_project.embedded import filesystem_broker

    monkeypatch.setenv("WORKFLOW_VAR_DIR", str(tmp_path / "var"))
    url, options = filesystem_broker(tmp_path)
    folders = {key: Path(value) for key, value in options.items() if key.endswith("_folder") or "_folder_" in key}
    assert url == "filesystem://"
    assert set(folders) == {"data_folder_in", "data_folder_out", "control_folder", "processed_folder"}
    assert all(folder.is_dir() and (tmp_path / "var") in folder.parents for folder in folders.values())
