"""Behind PgBouncer in transaction mode (DATABASE_PGBOUNCER=true): what the settings switch off, what the
application checks at start and on connecting, and what works through a real PgBouncer.

bin/test-pgbouncer runs this module, with the API and claim tests, with the application's own connections going
through a PgBouncer the test session starts (tests/pgbouncer.py); the tests marked `through_pgbouncer` run only
then. The others start a PgBouncer of their own, in front of the test database's server.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper

from core.pgbouncer import acting_role_verifier, prepared_statements_refusal, prepared_statements_support_check
from entitlements.models import User
from tests.pgbouncer import PgBouncer, pgbouncer_binary, pgbouncer_port, pgbouncer_version

ROOT = Path(__file__).resolve().parents[2]
APPS = ["cases", "core", "entitlements", "queues", "tasks", "workflow_project"]

through_pgbouncer = pytest.mark.skipif(
    not settings.DATABASE_PGBOUNCER, reason="runs with the application behind PgBouncer: bin/test-pgbouncer"
)
needs_pgbouncer = pytest.mark.skipif(
    pgbouncer_binary() is None, reason="PgBouncer is not installed (apt-get install -y pgbouncer; .ci/run does)"
)


# --- The settings -------------------------------------------------------------------------------------------------


def settings_in(**environment: str) -> dict:
    """The default database's settings as workflow_project/settings.py makes them from this environment, or
    {"error": message} when it refuses to."""
    probe = (
        "import json\n"
        "from django.core.exceptions import ImproperlyConfigured\n"
        "try:\n"
        "    from workflow_project import settings\n"
        "except ImproperlyConfigured as error:\n"
        "    print(json.dumps({'error': str(error)}))\n"
        "else:\n"
        "    print(json.dumps(settings.DATABASES['default'], default=str))\n"
    )
    environment = {"DATABASE_URL": "postgresql://workflow_maintenance@pgbouncer:6432/workflow", **environment}
    names = ("DATABASE_PGBOUNCER", "DATABASE_SET_ROLE", "DATABASE_TIMEOUTS_IN_OPTIONS", "DATABASE_PREPARED_STATEMENTS")
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**{k: v for k, v in os.environ.items() if k not in names}, **environment},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_directly_the_role_and_time_limits_travel_as_connection_options():
    database = settings_in(DATABASE_SET_ROLE="workflow_app")

    assert "-c role=workflow_app" in database["OPTIONS"]["options"]
    assert "-c statement_timeout=" in database["OPTIONS"]["options"]
    assert not database.get("DISABLE_SERVER_SIDE_CURSORS")


def test_behind_pgbouncer_no_connection_option_is_sent_and_server_side_cursors_are_off():
    database = settings_in(DATABASE_PGBOUNCER="true", DATABASE_SET_ROLE="workflow_app")

    assert "options" not in database.get("OPTIONS", {})
    assert database["DISABLE_SERVER_SIDE_CURSORS"] is True


def test_behind_pgbouncer_time_limits_as_connection_options_are_refused():
    refused = settings_in(DATABASE_PGBOUNCER="true", DATABASE_TIMEOUTS_IN_OPTIONS="true")

    assert "does not pass connection options on" in refused["error"]
    assert "the database roles carry the time limits" in refused["error"]


def test_behind_pgbouncer_options_in_the_url_are_refused():
    refused = settings_in(
        DATABASE_PGBOUNCER="true",
        DATABASE_URL="postgresql://workflow_app@pgbouncer:6432/workflow?options=-c%20search_path%3Dwork",
    )

    assert "options=..., which PgBouncer (DATABASE_PGBOUNCER=true) does not pass on" in refused["error"]


def test_prepared_statements_are_off_unless_asked_for():
    assert {"server_side_binding", "prepare_threshold"}.isdisjoint(settings_in().get("OPTIONS", {}))

    prepared = settings_in(DATABASE_PREPARED_STATEMENTS="true")["OPTIONS"]

    assert prepared["server_side_binding"] is True
    assert prepared["prepare_threshold"] == settings.PREPARE_THRESHOLD


@pytest.mark.django_db
def test_with_prepared_statements_off_nothing_is_prepared_in_the_session():
    for _ in range(settings.PREPARE_THRESHOLD + 2):
        list(User.objects.filter(username="alice"))

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone() == (0,)


# --- Prepared statements: which PgBouncer keeps them ----------------------------------------------------------------


def test_prepared_statements_are_refused_before_pgbouncer_1_21():
    refusal = prepared_statements_refusal(version="PgBouncer 1.20.1", max_prepared_statements=0)

    assert "needs PgBouncer 1.21 or newer with max_prepared_statements above 0" in refusal
    assert "leads to PgBouncer 1.20.1" in refusal


def test_prepared_statements_are_refused_by_a_pgbouncer_that_does_not_track_them():
    refusal = prepared_statements_refusal(version="PgBouncer 1.22.0", max_prepared_statements=0)

    assert "max_prepared_statements = 0" in refusal


def test_prepared_statements_are_accepted_by_a_pgbouncer_that_tracks_them():
    assert prepared_statements_refusal(version="PgBouncer 1.21.0", max_prepared_statements=200) is None


@contextmanager
def pgbouncer_in_front_of_the_server(**config: str) -> Iterator[PgBouncer]:
    """A PgBouncer of the test's own in front of the test database's server (config: its [pgbouncer] settings)."""
    login, server = settings.DATABASES["default"], settings.MIGRATE_DATABASE
    bouncer = PgBouncer(
        port=pgbouncer_port(),
        server_host=server["HOST"],
        server_port=server.get("PORT") or 5432,
        users={login["USER"]: login.get("PASSWORD") or ""},
        settings=config,
    )
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.remove()


@pytest.fixture
def own_pgbouncer(django_db_setup):
    """One server session for all its clients; its console open to the test login (stats_users), as
    core.pgbouncer needs for prepared statements."""
    with pgbouncer_in_front_of_the_server(
        stats_users=settings.DATABASES["default"]["USER"], default_pool_size="1"
    ) as b:
        yield b


def through(bouncer: PgBouncer) -> dict:
    """The default database's settings, at `bouncer`'s address."""
    return {**settings.DATABASES["default"], "HOST": "127.0.0.1", "PORT": str(bouncer.port), "OPTIONS": {}}


@needs_pgbouncer
def test_the_start_up_check_reads_the_version_of_the_real_pgbouncer(own_pgbouncer):
    installed = ".".join(map(str, pgbouncer_version()))
    if pgbouncer_version() >= (1, 21):
        pytest.skip(f"PgBouncer {installed} is installed: the refusal is for versions before 1.21")

    with pytest.raises(ImproperlyConfigured, match=rf"leads to PgBouncer {installed}, which passes prepared"):
        prepared_statements_support_check(through(own_pgbouncer))


@needs_pgbouncer
def test_the_application_refuses_to_start_with_prepared_statements_behind_an_old_pgbouncer(own_pgbouncer):
    if pgbouncer_version() >= (1, 21):
        pytest.skip("PgBouncer 1.21 or newer is installed: see the test that prepares through it")
    login = settings.DATABASES["default"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **{k: v for k, v in os.environ.items() if k != "DATABASE_SET_ROLE"},
            "DATABASE_URL": own_pgbouncer.url(login["USER"], login["NAME"], login.get("PASSWORD") or ""),
            "DATABASE_PGBOUNCER": "true",
            "DATABASE_PREPARED_STATEMENTS": "true",
        },
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_PREPARED_STATEMENTS=true needs PgBouncer 1.21 or newer" in result.stderr


@needs_pgbouncer
def test_without_stats_users_the_check_says_what_to_grant(django_db_setup):
    user = settings.DATABASES["default"]["USER"]
    with (
        pgbouncer_in_front_of_the_server() as bouncer,
        pytest.raises(ImproperlyConfigured, match=rf"List {user} in PgBouncer's stats_users"),
    ):
        prepared_statements_support_check(through(bouncer))


def prepare_in_two_clients(bouncer: PgBouncer) -> None:
    """Two clients of one server session (default_pool_size 1) each prepare the same statement as psycopg names
    it (_pg3_0), in transactions of their own, then run it again."""
    login = settings.DATABASES["default"]
    url = bouncer.url(login["USER"], connection.settings_dict["NAME"], login.get("PASSWORD") or "")
    with (
        psycopg.connect(url, autocommit=True, prepare_threshold=0) as a,
        psycopg.connect(url, autocommit=True, prepare_threshold=0) as b,
    ):
        for client in (a, b, a, b):
            assert client.execute("SELECT %s::int + 1", [1]).fetchone() == (2,)


@needs_pgbouncer
def test_before_1_21_pgbouncer_mixes_up_prepared_statements_of_its_clients(own_pgbouncer):
    if pgbouncer_version() >= (1, 21):
        pytest.skip("PgBouncer 1.21 or newer is installed")

    with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
        prepare_in_two_clients(own_pgbouncer)


@needs_pgbouncer
def test_pgbouncer_with_max_prepared_statements_keeps_prepared_statements_apart(django_db_setup):
    if pgbouncer_version() < (1, 21):
        pytest.skip(f"PgBouncer {'.'.join(map(str, pgbouncer_version()))} is installed; this needs 1.21 or newer")
    with pgbouncer_in_front_of_the_server(
        stats_users=settings.DATABASES["default"]["USER"], default_pool_size="1", max_prepared_statements="100"
    ) as bouncer:
        prepared_statements_support_check(through(bouncer))
        prepare_in_two_clients(bouncer)


# --- The role a login acts as ---------------------------------------------------------------------------------------


@needs_pgbouncer
@pytest.mark.django_db
def test_a_login_that_does_not_act_as_the_set_role_is_refused_with_the_statement_that_fixes_it(own_pgbouncer):
    database = {**through(own_pgbouncer), "NAME": connection.settings_dict["NAME"]}
    wrapper = DatabaseWrapper(database, alias="default")
    verify = acting_role_verifier(database=database, role="workflow_reporting")
    try:
        wrapper.ensure_connection()
        with pytest.raises(ImproperlyConfigured) as refused:
            verify(sender=DatabaseWrapper, connection=wrapper)
    finally:
        wrapper.close()

    assert f"ALTER ROLE {database['USER']} IN DATABASE {database['NAME']} SET role = workflow_reporting" in str(
        refused.value
    )


@needs_pgbouncer
def test_check_database_names_the_role_the_login_must_act_as_in_one_line(own_pgbouncer):
    login = settings.DATABASES["default"]
    # The test database's default role for the login is set only when the tests themselves run behind PgBouncer.
    acting = settings.DATABASE_SET_ROLE if settings.DATABASE_PGBOUNCER else login["USER"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check_database"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "DATABASE_URL": own_pgbouncer.url(login["USER"], login["NAME"], login.get("PASSWORD") or ""),
            "DATABASE_PGBOUNCER": "true",
            "DATABASE_SET_ROLE": "workflow_reporting",
        },
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"CommandError: cannot use the database: DATABASE_SET_ROLE=workflow_reporting, but this session runs as "
        f"{acting}: behind PgBouncer (DATABASE_PGBOUNCER=true) the role cannot be sent as a connection option, so "
        "the login must act as it by default. As a superuser: "
        f"ALTER ROLE {login['USER']} IN DATABASE {login['NAME']} SET role = workflow_reporting"
    ]


@through_pgbouncer
@pytest.mark.django_db
def test_the_application_reaches_the_server_through_pgbouncer_as_the_set_role():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid(), current_user, session_user")
        server_pid, current, login = cursor.fetchone()

    assert connection.connection.info.backend_pid != server_pid  # PgBouncer hands clients a key of its own
    assert (current, login) == (settings.DATABASE_SET_ROLE, settings.DATABASES["default"]["USER"])


# --- Server-side cursors ------------------------------------------------------------------------------------------


@through_pgbouncer
def test_iterating_outside_a_transaction_does_not_depend_on_one_server_session(committed_db, test_database_url):
    """Django's iterator() outside a transaction would DECLARE a cursor WITH HOLD in the session and FETCH from it in
    later statements; here another client takes that server session between two fetches."""
    usernames = []
    rows = User.objects.order_by("pk").values_list("username", flat=True).iterator(chunk_size=1)
    usernames.append(next(rows))
    with psycopg.connect(test_database_url) as other:
        other.execute("SELECT 1")  # holds the server session the first statement ran on, in an open transaction
        usernames += list(rows)

    assert usernames == list(User.objects.order_by("pk").values_list("username", flat=True))


# --- LISTEN / NOTIFY ----------------------------------------------------------------------------------------------


def listening_lines(source: str) -> list[int]:
    """Lines of a module that LISTEN (in SQL text) or wait for notifications (psycopg's notifies())."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(word.upper() == "LISTEN" for word in node.value.replace(";", " ").split()):
                lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr == "notifies":
            lines.append(node.lineno)
    return lines


def test_the_scan_sees_listen_statements_and_notification_waits():
    assert listening_lines('cursor.execute("LISTEN auth_changed")') == [1]
    assert listening_lines("for note in conn.notifies():\n    pass") == [1]
    assert listening_lines('cursor.execute("SELECT pg_notify(%s, %s)", ["a", "b"])') == []


def test_no_application_code_listens_for_notifications():
    """A LISTEN needs its session to itself, which transaction pooling never gives: code that adds one needs a
    connection of its own straight to the server, and this test is where to decide that."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        if path.relative_to(ROOT) not in DECIDED_LISTENERS
        for line in listening_lines(path.read_text())
    ]

    assert offenders == []


# Listeners decided on: each connects straight to PostgreSQL (DATABASE_LISTEN_URL), never through PgBouncer.
DECIDED_LISTENERS = {Path("tasks/external/wakeups.py")}


def test_the_external_task_wakeups_never_listen_through_pgbouncer(settings):
    from tasks.external.wakeups import _connection_params

    settings.DATABASE_PGBOUNCER, settings.DATABASE_LISTEN_URL = True, ""
    assert _connection_params() is None
    settings.DATABASE_LISTEN_URL = "postgresql://app@db-primary:5432/workflow"
    assert _connection_params() == {"conninfo": "postgresql://app@db-primary:5432/workflow"}
