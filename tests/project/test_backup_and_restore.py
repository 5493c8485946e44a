"""Backups with pgBackRest: the generated configuration, the history comparison check_integrity makes after a
restore, and the point-in-time restore drill on real clusters."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from cases.integrity import history_compare
from cases.models import Case, CaseEvent
from core.db_roles import maintenance_role
from entitlements.models import User

ROOT = Path(__file__).resolve().parents[2]


def test_backup_config_writes_the_repository_archiving_and_schedule(tmp_path):
    out = io.StringIO()
    call_command(
        "backup_config",
        "--pg-path",
        "/var/lib/postgresql/15/main",
        "--repo-path",
        "/srv/backups/it's here",
        "--output-dir",
        str(tmp_path),
        stdout=out,
    )

    conf = (tmp_path / "pgbackrest.conf").read_text()
    assert "[workflow]\npg1-path=/var/lib/postgresql/15/main\n" in conf
    assert "repo1-path=/srv/backups/it's here\n" in conf and "repo1-retention-full=14\n" in conf
    archiving = (tmp_path / "postgresql.archive.conf").read_text()
    assert "archive_mode = 'on'" in archiving and "archive_timeout = '900s'" in archiving  # WAL every 15 minutes
    # pgbackrest's config path is shell-quoted inside the conf file's quotes, whose own quotes are doubled.
    assert (
        "archive_command = 'pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=workflow archive-push %p'"
        in archiving
    )
    cron = (tmp_path / "pgbackrest.cron").read_text().splitlines()[1:]
    assert [line.split()[:6] for line in cron] == [
        ["30", "1", "*", "*", "*", "postgres"],
        ["15", "*", "*", "*", "*", "postgres"],
    ]
    assert cron[0].endswith("--type=full backup") and cron[1].endswith("--type=incr backup")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--pg-path", "relative/data"], "--pg-path must be an absolute path"),
        (["--pg-path", "/data", "--stanza", "no spaces"], "--stanza must be letters"),
        (["--pg-path", "/data", "--retention-full", "0"], "--retention-full must be at least 1"),
    ],
)
def test_backup_config_refuses_bad_arguments_in_one_line(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("backup_config", *arguments, stdout=io.StringIO())


def test_check_integrity_wants_both_compare_options_and_a_zoned_time(db):
    with pytest.raises(CommandError, match="go together"):
        call_command("check_integrity", "--compare-with", "postgresql://x/y", stdout=io.StringIO())
    with pytest.raises(CommandError, match="with a time zone"):
        call_command(
            "check_integrity", "--compare-with", "postgresql://x/y", "--until", "2026-12-01 10:00", stdout=io.StringIO()
        )
    with pytest.raises(CommandError, match="with a time zone"):  # well formed, but month 13
        call_command(
            "check_integrity",
            "--compare-with",
            "postgresql://x/y",
            "--until",
            "2026-13-01 10:00+00",
            stdout=io.StringIO(),
        )


@pytest.fixture
def opened_case(db, supervisor_sam):
    case = Case.objects.create(case_number="RESTORE-0001", title="Restored?", created_by=supervisor_sam)
    CaseEvent.objects.create(case=case, event_type="OPENED", actor=supervisor_sam, new_values={"title": "Restored?"})
    return case


def test_history_compare_reports_rows_the_source_does_not_hold(opened_case, test_database_url):
    # This test's transaction is not committed: the source connection (the same database) does not see its event.
    problems = history_compare(test_database_url, timezone.now())

    assert len(problems) == 1 and problems[0].startswith("case events up to ")
    assert problems[0].endswith(": 1 row(s) here, 0 in the source")


def test_history_compare_reports_a_row_whose_content_differs(committed_db, test_database_url):
    supervisor_sam = User.objects.get(username="supervisor")
    case = Case.objects.create(case_number="RESTORE-0002", title="Changed?", created_by=supervisor_sam)
    event = CaseEvent.objects.create(case=case, event_type="NOTE", actor=supervisor_sam, new_values={"note": "a"})
    assert history_compare(test_database_url, timezone.now()) == []

    with transaction.atomic(), maintenance_role():  # only maintenance may rewrite an event
        CaseEvent.objects.filter(pk=event.pk).update(new_values={"note": "b"})
        problems = history_compare(test_database_url, timezone.now())
        transaction.set_rollback(True)

    assert len(problems) == 1 and problems[0].startswith("case events up to ")
    assert problems[0].endswith(" row(s) count, but their contents differ")


def test_history_compare_names_an_unreachable_source(db):
    problems = history_compare("postgresql://postgres@127.0.0.1:1/nowhere", timezone.now())
    assert len(problems) == 1 and problems[0].startswith("cannot read the source database: ")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pgbackrest") is None, reason="pgbackrest is not installed (.ci/run installs it)")
def test_the_restore_drill_restores_to_a_moment_between_two_writes():
    env = {key: value for key, value in os.environ.items() if not key.startswith("DATABASE_")}
    done = subprocess.run(
        [sys.executable, "manage.py", "restore_drill", "--cases", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout
    assert "full backup taken" in lines and "incremental backup taken" in lines
    assert "batches A and B are there (4 cases), batch C is not" in lines
    assert "All invariants hold. History up to " in lines and "matches the source." in lines
    assert "restore drill passed" in lines
