"""deploy/systemd: the units are valid for systemd and start commands that exist; the example environment files set
only what the settings read."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTANCES = {
    "workflow-web@.service": "workflow-web@8001.service",
    "workflow-worker@.service": "workflow-worker@1.service",
}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_every_unit_and_finds_its_commands(tmp_path):
    names = []
    for unit in sorted(UNITS.glob("*.service")):
        # The units say /opt/workflow, where a release is installed; here, this checkout (with its .venv).
        name = INSTANCES.get(unit.name, unit.name)
        (tmp_path / name).write_text(unit.read_text().replace("/opt/workflow", str(ROOT)))
        names.append(f"./{name}")

    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"SYSTEMD_LOG_LEVEL": "info", "PATH": "/usr/bin:/bin"},
    )

    assert done.returncode == 0, done.stderr
    assert "Unknown" not in done.stderr and "ignoring" not in done.stderr, done.stderr
    assert len(names) == 4


def test_exactly_one_beat_and_migrations_as_the_owner():
    beat = [unit.name for unit in UNITS.glob("*.service") if " beat " in unit.read_text()]
    assert beat == ["workflow-beat.service"] and "@" not in beat[0]  # a template could run two
    assert "--beat" not in (UNITS / "workflow-worker@.service").read_text()
    assert "DATABASE_MIGRATE_URL=postgresql://workflow_owner:" in (UNITS / "env" / "migrate.env").read_text()
    assert "DATABASE_SET_ROLE=workflow_app" in (UNITS / "env" / "worker.env").read_text()
    assert "DATABASE_URL=postgresql://workflow_app:" in (UNITS / "env" / "web.env").read_text()


def test_the_example_environment_sets_only_what_the_settings_read():
    settings_source = (ROOT / "workflow_project" / "settings.py").read_text()
    read = set(
        re.findall(r"""(?:environ\.get|environ\[|env_bool|env_list|getenv)\(?\s*["']([A-Z_]+)["']""", settings_source)
    )
    for env_file in sorted((UNITS / "env").glob("*.env")):
        for line in env_file.read_text().splitlines():
            if line and not line.startswith("#"):
                name = line.split("=", 1)[0]
                assert name in read, f"{env_file.name}: {name} is not a setting workflow_project/settings.py reads"


def test_every_example_database_url_is_one_the_settings_can_read():
    from core.database_url import parse

    urls = [
        line.split("=", 1)[1]
        for env_file in sorted((UNITS / "env").glob("*.env"))
        for line in env_file.read_text().splitlines()
        if re.match(r"DATABASE_[A-Z_]*URL=", line)
    ]
    assert len(urls) == 5
    for url in urls:
        settings = parse(url)
        assert settings["NAME"] == "workflow" and settings["USER"].startswith("workflow_"), url
