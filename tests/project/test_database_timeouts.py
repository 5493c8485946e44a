"""Time limits on the application's database sessions: settings, how they reach PostgreSQL, and what a request that
hits one answers (503 with Retry-After, never a 500).

Stuck queries are made with locks another connection holds, so the tests wait on events, not on clocks: a
statement that waits for a lock counts against statement_timeout as much as one that computes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.models.signals import pre_migrate
from django.db.transaction import TransactionManagementError
from django.test import Client

from core.api import DATABASE_TIMEOUT, database_fault
from core.timeouts import session_timeouts, statement_timeout_lift
from entitlements.models import User
from workflow_project import settings as settings_module

ROOT = Path(__file__).resolve().parents[2]
TERMINATION_DEADLINE_SECONDS = 30


@pytest.mark.parametrize(
    ("value", "milliseconds"),
    [("500ms", 500), ("30s", 30_000), ("2min", 120_000), ("1h", 3_600_000), ("0", 0), ("0s", 0), ("", 10_000)],
)
def test_a_timeout_setting_reads_a_postgresql_duration(monkeypatch, value, milliseconds):
    monkeypatch.setenv("DATABASE_LOCK_TIMEOUT", value)

    assert settings_module.env_duration_ms("DATABASE_LOCK_TIMEOUT", "10s") == milliseconds


@pytest.mark.parametrize("value", ["30", "1.5s", "-1s", "10 seconds", "30S", "soon", "5d"])
def test_a_timeout_setting_without_a_known_unit_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", value)

    with pytest.raises(ImproperlyConfigured, match=r"DATABASE_STATEMENT_TIMEOUT must be .*500ms, 30s, 2min, 1h"):
        settings_module.env_duration_ms("DATABASE_STATEMENT_TIMEOUT", "30s")


def test_the_defaults_bound_statements_locks_and_idle_transactions():
    assert session_timeouts() == {
        "statement_timeout": 30_000,
        "lock_timeout": 10_000,
        "idle_in_transaction_session_timeout": 60_000,
    }


def test_the_timeouts_are_added_to_the_options_a_url_already_has():
    options = settings_module.database_settings("postgresql://app@db/workflow?options=-c%20search_path%3Dwork")[
        "OPTIONS"
    ]["options"]

    assert options.startswith("-c search_path=work ")
    assert "-c statement_timeout=30000" in options
    assert "-c lock_timeout=10000" in options
    assert "-c idle_in_transaction_session_timeout=60000" in options


def test_behind_pgbouncer_the_timeouts_are_left_to_the_roles(monkeypatch):
    monkeypatch.setattr(settings_module, "DATABASE_TIMEOUTS_IN_OPTIONS", False)

    assert "OPTIONS" not in settings_module.database_settings("postgresql://app@pgbouncer:6432/workflow")


@pytest.mark.django_db
def test_the_application_connection_runs_under_the_configured_timeouts():
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, setting::int FROM pg_settings WHERE name = ANY(%s)", [list(session_timeouts())])
        in_force = dict(cursor.fetchall())

    assert in_force == session_timeouts()


def manage(*arguments: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **environment},
        timeout=120,
    )


def test_timeouts_set_in_the_environment_reach_the_session(test_database_url):
    result = manage(
        "check_database",
        DATABASE_URL=test_database_url,
        DATABASE_STATEMENT_TIMEOUT="1500ms",
        DATABASE_LOCK_TIMEOUT="2s",
        DATABASE_IDLE_IN_TRANSACTION_TIMEOUT="5min",
    )

    assert result.returncode == 0, result.stderr
    assert "statement_timeout=1500ms, lock_timeout=2s, idle_in_transaction_session_timeout=5min" in result.stdout


def test_a_bad_timeout_in_the_environment_stops_start_up_naming_it(test_database_url):
    result = manage("check_database", DATABASE_URL=test_database_url, DATABASE_LOCK_TIMEOUT="10")

    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_LOCK_TIMEOUT must be a whole number with a unit" in result.stderr


def setting_in_force(name: str) -> int:
    """The session's value of a time limit, in milliseconds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting::int FROM pg_settings WHERE name = %s", [name])
        return cursor.fetchone()[0]


def test_a_long_job_lifts_the_statement_timeout_for_its_own_transaction_only(committed_db):
    with transaction.atomic():
        statement_timeout_lift(reason="a test")
        assert setting_in_force("statement_timeout") == 0
        assert setting_in_force("lock_timeout") == settings.DATABASE_LOCK_TIMEOUT

    assert setting_in_force("statement_timeout") == settings.DATABASE_STATEMENT_TIMEOUT


def test_lifting_the_statement_timeout_outside_a_transaction_is_refused(committed_db):
    with pytest.raises(TransactionManagementError):
        statement_timeout_lift(reason="a test")

    assert setting_in_force("statement_timeout") == settings.DATABASE_STATEMENT_TIMEOUT


def test_migrate_runs_without_a_statement_timeout_and_restores_it_afterwards(committed_db):
    # Outside the test's transaction: migrate logs in as the owner (core/owner.py), a connection of its own.
    during = []

    def record(sender, **kwargs):  # connected after core's receiver, so it sees what migrate runs under
        during.append(setting_in_force("statement_timeout"))

    pre_migrate.connect(record, dispatch_uid="tests.record_statement_timeout")
    try:
        call_command("migrate", verbosity=0)
    finally:
        pre_migrate.disconnect(dispatch_uid="tests.record_statement_timeout")

    assert during and set(during) == {0}
    assert setting_in_force("statement_timeout") == settings.DATABASE_STATEMENT_TIMEOUT


# --- What a request that meets a limit answers -------------------------------------------------------------------


@pytest.fixture
def alice_api(committed_api_as):
    return committed_api_as("alice")


@pytest.fixture
def alice_pages(committed_db):
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.get(username="alice"))
    return client


@pytest.fixture
def intake_task(committed_db):
    from queues.models import WorkflowQueue
    from tasks.services import task_insert

    with transaction.atomic():
        return task_insert(queue=WorkflowQueue.objects.get(queue_name="intake"), name="Held elsewhere")


@pytest.fixture
def session_limits():
    """Sets time limits on the connection the requests of this thread use; back to the configured ones after."""

    def apply(**limits: str) -> None:
        with connection.cursor() as cursor:
            for name, value in limits.items():
                cursor.execute("SELECT set_config(%s, %s, false)", [name, value])

    yield apply
    with connection.cursor() as cursor:
        cursor.execute("RESET statement_timeout; RESET lock_timeout")


@pytest.fixture
def tasks_locked_elsewhere(test_database_url):
    """Another session locks the tasks table (in the given mode) until the test ends. ACCESS EXCLUSIVE stops reads
    too; EXCLUSIVE lets reads through, so a write gets as far as its row locks and waits there, as it would behind
    another transaction's row lock. A table lock needs no row the other session may see (row-level security)."""
    with psycopg.connect(test_database_url) as other:

        def lock(mode: str) -> None:
            other.execute(f"LOCK TABLE flowable.workflow_tasks IN {mode} MODE")

        yield lock
        other.rollback()


def test_an_api_read_cancelled_by_the_statement_timeout_is_a_503_with_retry_after(
    alice_api, session_limits, tasks_locked_elsewhere
):
    tasks_locked_elsewhere("ACCESS EXCLUSIVE")
    session_limits(statement_timeout="200ms", lock_timeout="0")  # waits for the lock until the statement times out

    response = alice_api.get("/api/workflow/tasks/")

    assert response.status_code == 503
    assert response["Retry-After"] == str(DATABASE_TIMEOUT.retry_after)
    assert response.json()["code"] == "database_timeout"
    assert "try again" in response.json()["detail"].lower()


def test_an_api_write_cancelled_by_the_statement_timeout_is_a_503_and_changes_nothing(
    alice_api, intake_task, session_limits, tasks_locked_elsewhere
):
    tasks_locked_elsewhere("EXCLUSIVE")
    session_limits(statement_timeout="200ms", lock_timeout="0")

    response = alice_api.post(f"/api/workflow/tasks/{intake_task.pk}/claim")

    assert response.status_code == 503
    assert response.json()["code"] == "database_timeout"
    assert int(response["Retry-After"]) > 0
    intake_task.refresh_from_db()
    assert (intake_task.status, intake_task.assignee_id) == ("OPEN", None)


def test_a_page_cancelled_by_the_statement_timeout_is_a_503_try_again_page(
    alice_pages, session_limits, tasks_locked_elsewhere
):
    tasks_locked_elsewhere("ACCESS EXCLUSIVE")
    session_limits(statement_timeout="200ms", lock_timeout="0")

    response = alice_pages.get("/inbox/queues/")

    assert response.status_code == 503
    assert response["Retry-After"] == str(DATABASE_TIMEOUT.retry_after)
    assert b"took too long" in response.content
    assert b"try again" in response.content.lower()


def test_a_page_claim_that_times_out_on_a_lock_is_a_503_not_a_500(
    alice_pages, intake_task, session_limits, tasks_locked_elsewhere
):
    tasks_locked_elsewhere("EXCLUSIVE")
    session_limits(lock_timeout="200ms")

    response = alice_pages.post(f"/tasks/{intake_task.pk}/claim/")

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert b"Someone else was changing the same work" in response.content
    intake_task.refresh_from_db()
    assert intake_task.status == "OPEN"


def wait_until_ended(database_url: str, pid: int) -> None:
    """Until the server has ended session `pid` (bounded: the test fails rather than hangs)."""
    deadline = time.monotonic() + TERMINATION_DEADLINE_SECONDS
    with psycopg.connect(database_url, autocommit=True) as observer:
        while observer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the idle session was not ended"
            time.sleep(0.02)


def test_a_session_left_idle_in_a_transaction_is_ended_by_the_server(alice_api, test_database_url):
    with connection.cursor() as cursor:
        cursor.execute("SET idle_in_transaction_session_timeout = '100ms'")
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()

    with pytest.raises(DatabaseError) as ended:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            wait_until_ended(test_database_url, pid)  # idle inside the transaction meanwhile
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")

    assert ended.value.__cause__.sqlstate == "25P03"  # idle_in_transaction_session_timeout
    assert database_fault(ended.value) is DATABASE_TIMEOUT  # what a request would answer: 503, Retry-After
    # The next request gets a new session, under the configured limits.
    assert alice_api.get("/api/workflow/tasks/").status_code == 200
    assert setting_in_force("idle_in_transaction_session_timeout") == settings.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT
