"""Shared fixtures: the demo organisation's people, API clients, and helpers."""

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from entitlements.models import User

DEMO_PASSWORD = "demo-pass-123"


def seed_demo_org() -> None:
    with open("/dev/null", "w") as quiet:
        call_command("seed_demo", "--password", DEMO_PASSWORD, "--no-workflows", stdout=quiet)


# ANALYZE needs a table's owner (PostgreSQL 15 has no MAINTAIN privilege): tests that shape the planner's statistics
# inside their own transaction call this instead, as the application role. Test databases only.
TEST_SUPPORT_SQL = """
CREATE SCHEMA IF NOT EXISTS test_support;
CREATE OR REPLACE FUNCTION test_support.analyze(target regclass DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path TO 'pg_catalog' AS $$
BEGIN
    IF target IS NULL THEN ANALYZE; ELSE EXECUTE format('ANALYZE %s', target); END IF;
END $$;
GRANT USAGE ON SCHEMA test_support TO workflow_app;
GRANT EXECUTE ON FUNCTION test_support.analyze(regclass) TO workflow_app;
"""


@pytest.fixture(scope="session")
def django_db_setup(
    request,
    django_test_environment,
    django_db_blocker,
    django_db_keepdb,
    django_db_createdb,
    django_db_modify_db_settings,
):
    """Create the test database (always: committed_db tests need it too) and seed the demo organisation once.

    Each test's transaction rolls its own changes back.
    The owner role creates and migrates it (as `manage.py migrate` does); the tests then run as the application role.
    With DATABASE_PGBOUNCER=true the application's connections go through a PgBouncer of the session's own
    (tests/pgbouncer.py), the owner's straight to the server.
    """
    from contextlib import ExitStack

    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    from core.owner import connected_as_owner
    from entitlements.row_scope import SYSTEM, row_scope_default_set
    from tests.pgbouncer import pgbouncer_for_test_session

    keepdb = django_db_keepdb and not django_db_createdb
    with ExitStack() as pooler:
        with django_db_blocker.unblock():
            with connected_as_owner():
                config = setup_databases(
                    verbosity=request.config.option.verbose, interactive=False, keepdb=keepdb, aliases={"default"}
                )
                with connection.cursor() as cursor:
                    cursor.execute(TEST_SUPPORT_SQL)
            if settings.DATABASE_PGBOUNCER:
                pooler.enter_context(pgbouncer_for_test_session())
            # Setup code and assertions reach every row, as the system; services, requests and jobs enter their own
            # row scope (entitlements/row_scope.py), so row-level security applies to them as in production.
            row_scope_default_set(SYSTEM)
            seed_demo_org()
        yield
    # PgBouncer is stopped by now: its server connections would keep the test database from being dropped.
    if not keepdb:
        with django_db_blocker.unblock(), connected_as_owner():
            teardown_databases(config, verbosity=request.config.option.verbose)


@pytest.fixture
def demo_org(db):
    """The seed_demo organisation, with a known password (re-seeded if a transactional test flushed it)."""
    if not User.objects.filter(username="supervisor").exists():
        seed_demo_org()


@pytest.fixture
def caseworker_alice(demo_org) -> User:
    return User.objects.get(username="alice")


@pytest.fixture
def fraud_investigator_bob(demo_org) -> User:
    return User.objects.get(username="bob")


@pytest.fixture
def legal_reviewer_carol(demo_org) -> User:
    return User.objects.get(username="carol")


@pytest.fixture
def supervisor_sam(demo_org) -> User:
    return User.objects.get(username="supervisor")


@pytest.fixture
def integration_account(demo_org) -> User:
    return User.objects.get(username="integration")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def throttle_state_cleared():
    """Each test starts with no API rate-limit history (it lives in the cache, which outlives a test)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def api_as():
    """An API client authenticated by a real token for the given user (token options: name, read_only, expires_in);
    the issued token is the client's `issued`."""
    from entitlements.services import api_token_create

    def make(user, **token_options) -> APIClient:
        client = APIClient()
        client.issued = api_token_create(user=user, **token_options)
        client.credentials(HTTP_AUTHORIZATION=f"Token {client.issued.key}")
        return client

    return make


@pytest.fixture
def make_task(demo_org):
    """Create a task directly in a queue (no access check), as the engine would."""
    from django.db import transaction

    from queues.models import WorkflowQueue
    from tasks.services import task_insert

    def make(queue_name="intake", name="Review", **fields):
        with transaction.atomic():
            return task_insert(queue=WorkflowQueue.objects.get(queue_name=queue_name), name=name, **fields)

    return make


@pytest.fixture
def archived_task(caseworker_alice, make_task):
    """An intake task alice claimed and completed long ago, moved to the archive tables."""
    from datetime import timedelta

    from django.utils import timezone

    from tasks.models import ArchivedTask, WorkflowTask
    from tasks.services import task_claim, task_complete
    from tasks.sla.archive import completed_tasks_archive

    archive_after_days = 30
    task = make_task("intake", name="Old intake review", priority=70)
    task_claim(user=caseworker_alice, task_id=task.pk)
    task_complete(user=caseworker_alice, task_id=task.pk, comment="done long ago")
    WorkflowTask.objects.filter(pk=task.pk).update(completed_at=timezone.now() - timedelta(days=archive_after_days + 5))
    completed_tasks_archive(older_than_days=archive_after_days)
    assert not WorkflowTask.objects.filter(pk=task.pk).exists()
    assert ArchivedTask.objects.filter(pk=task.pk).exists()
    return task


@pytest.fixture
def test_database_url(django_db_setup):
    """A DATABASE_URL for subprocesses that points at the test database (no transaction is opened here)."""
    return url_of_test_database()


def url_of_test_database() -> str:
    """test_database_url, for fixtures of a wider scope (after django_db_setup)."""
    from django.db import connection

    s = connection.settings_dict
    host = s["HOST"] or "127.0.0.1"
    if host.startswith("/"):
        return f"postgresql://{s['USER']}@/{s['NAME']}?host={host}"
    return f"postgresql://{s['USER']}:{s.get('PASSWORD') or ''}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def owner_connection(django_db_setup):
    """A psycopg connection to the test database as the owner role, for DDL the application role may not run.
    Its transaction is rolled back at the end of the test."""

    from tests.roles import owner_connect

    owner = owner_connect()
    try:
        yield owner
    finally:
        owner.rollback()
        owner.close()


@pytest.fixture
def admin_connection(django_db_setup):
    """A psycopg connection to the test database as the superuser (DATABASE_ADMIN_URL); rolled back at the end."""

    from tests.roles import admin_connect

    admin = admin_connect()
    try:
        yield admin
    finally:
        admin.rollback()
        admin.close()


CLEANUP_SQL = """
DELETE FROM onecms.case_subjects;
DELETE FROM onecms.case_tombstones;
DELETE FROM onecms.retention_policies;
DELETE FROM onecms.case_events;
DELETE FROM onecms.case_workflow_mapping;
DELETE FROM onecms.case_subjects;
DELETE FROM onecms.cases;
DELETE FROM flowable.notifications;
DELETE FROM flowable.task_history;
DELETE FROM flowable.workflow_tasks;
DELETE FROM flowable.process_incidents;
DELETE FROM flowable.external_task_history;
DELETE FROM flowable.external_tasks;
DELETE FROM flowable.process_instances;
DELETE FROM flowable.workflow_definitions;
DELETE FROM flowable.decision_definitions;
DELETE FROM queues.queue_statistics;
UPDATE queues.workflow_queues
   SET current_load = 0, round_robin_cursor = 0, aging_enabled = DEFAULT, express_threshold = NULL,
       express_share_percent = DEFAULT, express_credit = DEFAULT;
DELETE FROM entitlements.api_tokens;
DELETE FROM entitlements.auth_failure_tallies;
DELETE FROM axes_accessattempt;
"""


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker):
    """Real commits, for tests that use several connections (threads, processes, psql).

    Unlike pytest-django's transactional_db it does not TRUNCATE every table (the security audit refuses
    TRUNCATE by design): it keeps the demo organisation and deletes the work data afterwards.
    """
    from django.db import connection

    with django_db_blocker.unblock():
        if not User.objects.filter(username="supervisor").exists():
            seed_demo_org()
        demo_user_ids = set(User.objects.values_list("pk", flat=True))
        try:
            yield
        finally:
            from django.db import connections, transaction

            from core.db_roles import maintenance_role

            for alias in connections:
                connections[alias].close()
            # History is append-only for the application role: the maintenance role clears it, as retention would.
            with transaction.atomic(), maintenance_role(), connection.cursor() as cursor:
                cursor.execute(CLEANUP_SQL)
            User.objects.exclude(pk__in=demo_user_ids).delete()


@pytest.fixture
def committed_api_as(committed_db):
    """An API client with a real token of the named user, for committed_db tests (other connections see it)."""
    from entitlements.services import api_token_create

    def make(username: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=User.objects.get(username=username)).key}")
        return client

    return make


PROBE_SCHEMAS = "entitlements, queues, flowable, onecms, public, test_support"
BYPASSES_ROW_SECURITY_SQL = """
SELECT r.rolsuper OR r.rolbypassrls OR pg_has_role(current_user, c.relowner, 'USAGE')
  FROM pg_roles r, pg_class c
 WHERE r.rolname = current_user AND c.oid = 'flowable.workflow_tasks'::regclass
"""


@pytest.fixture
def row_security_enforced(db):
    """The rest of the test runs as a role that row-level security applies to.

    The connection's own role when it is one (the application role). A superuser, a BYPASSRLS role or a table
    owner is not filtered: the test then switches to a NOLOGIN role made inside its transaction, with the
    application's grants, and everything (the role included) is rolled back with the test.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BYPASSES_ROW_SECURITY_SQL)
        if not cursor.fetchone()[0]:
            return
        role = "rls_probe_" + "".join(c if c.isalnum() else "_" for c in connection.settings_dict["NAME"])[:40]
        cursor.execute(
            f"""
            CREATE ROLE {role} NOLOGIN;
            GRANT USAGE ON SCHEMA {PROBE_SCHEMAS} TO {role};
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {PROBE_SCHEMAS} TO {role};
            GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {PROBE_SCHEMAS} TO {role};
            GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {PROBE_SCHEMAS} TO {role};
            SET LOCAL ROLE {role};
            """
        )
