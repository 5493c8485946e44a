"""The roles the system runs as (core/db_roles.py): the application role has DML only and cannot rewrite history;
the history triggers hold for every other role too, replica sessions included; only the maintenance role rewrites."""

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from core.db_roles import APP, MAINTENANCE, OWNER, MaintenanceRoleUnavailable, database_url, maintenance_role
from entitlements.models import SecurityEvent
from entitlements.services import security_event_record
from tests.roles import admin_connect

pytestmark = pytest.mark.django_db

HISTORY_TABLES = [
    "entitlements.access_audit",
    "entitlements.security_events",
    "flowable.alert_delivery_attempts",
    "flowable.task_history",
    "flowable.task_history_archive",
    "onecms.case_events",
    "onecms.case_tombstones",
]


def current_user() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


def refused(sql: str, params=None, match: str = "permission denied") -> None:
    with pytest.raises(DatabaseError, match=match), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_tests_run_as_the_application_role_which_is_no_superuser_and_bypasses_no_row_security():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
            " WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (APP, False, False, False, False)


def test_the_application_role_owns_nothing_in_our_schemas():
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname IN ('entitlements', 'queues', 'flowable', 'onecms', 'public')
                  AND pg_has_role(%s, c.relowner, 'USAGE')""",
            [APP],
        )
        assert cursor.fetchone() == (0,)


@pytest.mark.parametrize(
    "ddl",
    [
        "CREATE TABLE flowable.smuggled (id int)",
        "CREATE TABLE public.smuggled (id int)",
        "ALTER TABLE flowable.workflow_tasks ADD COLUMN smuggled int",
        "DROP TABLE onecms.cases",
        "CREATE INDEX smuggled ON flowable.workflow_tasks (name)",
        "ALTER TABLE flowable.task_history DISABLE TRIGGER task_history_append_only",
        "CREATE OR REPLACE FUNCTION entitlements.refuse_history_rewrite() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RETURN NEW; END $$",
        "CREATE SCHEMA smuggled",
    ],
)
def test_the_application_role_cannot_run_ddl(ddl):
    refused(ddl, match="permission denied|must be owner")


@pytest.mark.parametrize(
    "table",
    [
        "flowable.workflow_tasks",
        "onecms.cases",
        "entitlements.users",
        "entitlements.access_audit_default",
        *HISTORY_TABLES,
    ],
)
def test_the_application_role_cannot_truncate(table):
    refused(f"TRUNCATE {table} CASCADE")


@pytest.mark.parametrize(
    "partition", ["flowable.task_history_archive_default", "flowable.workflow_tasks_archive_default"]
)
def test_the_application_role_reaches_partitions_under_row_security_only_through_their_parent(partition):
    # A partition carries none of its parent's policies: read by name it would show every row.
    refused(f"SELECT count(*) FROM {partition}")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition.removesuffix('_default')}")  # the parent: policies apply


@pytest.mark.parametrize("table", HISTORY_TABLES)
@pytest.mark.parametrize("statement", ["UPDATE {table} SET {column} = {column}", "DELETE FROM {table}"])
def test_the_application_role_cannot_update_or_delete_history(table, statement, caseworker_alice, make_task):
    from tasks.services import task_claim

    task_claim(user=caseworker_alice, task_id=make_task("intake").pk)  # a history row at least
    security_event_record(event_type=SecurityEvent.Type.LOGIN_SUCCESS, actor_username="alice")

    column = {
        "flowable.alert_delivery_attempts": "attempted_at",
        "entitlements.access_audit": "read_at",
        "onecms.case_tombstones": "deleted_at",
    }.get(table, "created_at")
    refused(statement.format(table=table, column=column))


def test_the_application_role_may_append_history(caseworker_alice, make_task):
    from tasks.models import TaskHistory
    from tasks.services import task_claim

    task = make_task("intake")
    task_claim(user=caseworker_alice, task_id=task.pk)

    assert TaskHistory.objects.filter(task_id=task.pk).exists()


def test_a_login_without_the_maintenance_role_cannot_raise_itself_to_it(django_db_setup):
    from django.conf import settings

    app_url = database_url(settings.ADMIN_DATABASE, user=APP, password="", name=connection.settings_dict["NAME"])
    with psycopg.connect(app_url) as app, app.cursor() as cursor:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cursor.execute(f"SET ROLE {MAINTENANCE}")


def test_maintenance_role_refuses_a_login_that_does_not_hold_it(monkeypatch):
    monkeypatch.setattr("core.db_roles.MAINTENANCE", OWNER)  # the tests' login holds the app and maintenance roles

    with pytest.raises(MaintenanceRoleUnavailable, match="must run as the"), transaction.atomic():
        with maintenance_role():
            pass


def test_maintenance_role_may_rewrite_history_inside_its_block_and_only_there():
    event = security_event_record(event_type=SecurityEvent.Type.LOGIN_SUCCESS, actor_username="alice")

    with transaction.atomic():
        with maintenance_role():
            SecurityEvent.objects.filter(pk=event.pk).update(actor_username="erased-user-1")
            assert current_user() == MAINTENANCE
        assert current_user() == APP
        refused("DELETE FROM entitlements.security_events")

    assert SecurityEvent.objects.get(pk=event.pk).actor_username == "erased-user-1"


@pytest.mark.parametrize("table", HISTORY_TABLES)
def test_the_history_triggers_refuse_the_owner_even_in_a_replica_session(table):
    """Triggers enabled ALWAYS: session_replication_role = replica (which a superuser may set) does not skip them,
    and they stop a role the grants would let through (the owner)."""
    with admin_connect() as admin, admin.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(f"SET ROLE {OWNER}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only: TRUNCATE refused"):
            cursor.execute(f"TRUNCATE {table}")
        admin.rollback()


def test_a_row_of_history_is_refused_to_the_owner_in_a_replica_session_with_the_ignore_setting_set():
    with admin_connect() as admin, admin.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM entitlements.security_events")
        assert cursor.fetchone()[0] > 0  # seed_demo's privilege changes
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SELECT set_config('pgtrigger.ignore', '{security_events_append_only}', false)")
        cursor.execute(f"SET ROLE {OWNER}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only: UPDATE refused"):
            cursor.execute("UPDATE entitlements.security_events SET actor_username = 'forged'")
        admin.rollback()


@pytest.mark.parametrize("table", HISTORY_TABLES)
def test_every_history_table_has_both_triggers_enabled_always(table):
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT t.tgname, t.tgenabled FROM pg_trigger t
                WHERE t.tgrelid = %s::regclass AND t.tgfoid = 'entitlements.refuse_history_rewrite()'::regprocedure
                ORDER BY 1""",
            [table],
        )
        name = table.split(".")[1]
        assert cursor.fetchall() == [(f"{name}_append_only", "A"), (f"{name}_no_truncate", "A")]


def test_the_roles_have_the_attributes_each_needs():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname LIKE 'workflow\\_%%'"
            " ORDER BY rolname"
        )
        roles = {name: (superuser, bypass, login) for name, superuser, bypass, login in cursor.fetchall()}
    assert roles == {
        "workflow_app": (False, False, True),
        "workflow_maintenance": (False, True, True),
        "workflow_owner": (False, False, True),
        "workflow_reporting": (False, True, True),
    }


def test_the_reporting_role_reads_but_cannot_write(django_db_setup):
    from django.conf import settings

    url = database_url(
        settings.ADMIN_DATABASE, user="workflow_reporting", password="", name=connection.settings_dict["NAME"]
    )
    with psycopg.connect(url) as reporting, reporting.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM onecms.cases")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cursor.execute("UPDATE onecms.cases SET title = title")


@pytest.fixture
def case_mapping(supervisor_sam, caseworker_alice):
    from cases.demo import DEMO_BPMN
    from cases.models import CaseWorkflowMapping
    from cases.services import case_open
    from tasks.bpmn.workflows import definition_deploy

    definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())
    case = case_open(
        user=caseworker_alice, title="Forged invoices", allegations=[{"type": "FRAUD", "description": "x"}]
    )
    return CaseWorkflowMapping.objects.get(case=case)


def hops(mapping) -> list:
    mapping.refresh_from_db(fields=["routing_history"])
    return mapping.routing_history


def test_a_routing_hop_may_be_appended(case_mapping):
    before = hops(case_mapping)
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE onecms.case_workflow_mapping SET routing_history = routing_history || '[{"to_queue": "triage"}]'
                WHERE mapping_id = %s""",
            [case_mapping.pk],
        )

    assert hops(case_mapping) == [*before, {"to_queue": "triage"}]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE onecms.case_workflow_mapping SET routing_history = '[]' WHERE mapping_id = %s",
        """UPDATE onecms.case_workflow_mapping SET routing_history = jsonb_set(routing_history, '{0,to_queue}', '"x"')
            WHERE mapping_id = %s""",
        "DELETE FROM onecms.case_workflow_mapping WHERE mapping_id = %s",
    ],
)
def test_a_routing_hop_cannot_be_changed_or_dropped_nor_a_mapping_deleted(case_mapping, statement):
    assert hops(case_mapping), "the case's first hop"

    refused(statement, [case_mapping.pk], match="routing hops of onecms.case_workflow_mapping are append-only")


def test_the_routing_hops_cannot_be_truncated():
    refused("TRUNCATE onecms.case_workflow_mapping CASCADE", match="permission denied")


def test_the_application_role_carries_the_session_time_limits_where_connection_options_do_not_reach():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolconfig FROM pg_roles WHERE rolname = %s", [APP])
        (config,) = cursor.fetchone()
    assert "statement_timeout=30000" in config and "lock_timeout=10000" in config
    assert "idle_in_transaction_session_timeout=60000" in config
