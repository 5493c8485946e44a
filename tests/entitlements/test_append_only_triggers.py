"""django-pgtrigger's append-only triggers on our schema-qualified tables, and the two ways past them that
entitlements/triggers.py states (issue 22 closes both with grants: these tests pin what is true until then)."""

import pgtrigger
import pytest
from django.db import DatabaseError, connection, transaction

from entitlements.models import SecurityEvent
from entitlements.services import security_event_record

pytestmark = pytest.mark.django_db

UPDATE = "UPDATE entitlements.security_events SET actor_username = 'forged' WHERE event_id = %s"


def audit_row() -> SecurityEvent:
    return security_event_record(event_type=SecurityEvent.Type.LOGIN_SUCCESS, actor_username="alice")


def test_pgtrigger_installs_its_triggers_on_the_table_in_our_schema():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'entitlements.security_events'::regclass"
            " AND NOT tgisinternal ORDER BY tgname"
        )
        names = [row[0] for row in cursor.fetchall()]
    expected = sorted(trigger.get_pgid(SecurityEvent) for trigger in SecurityEvent._meta.triggers)
    assert names == expected and len(names) == 2


def test_pgtrigger_reports_the_triggers_of_the_schema_qualified_table_installed_and_enabled():
    statuses = {
        trigger.name: trigger.get_installation_status(SecurityEvent) for trigger in SecurityEvent._meta.triggers
    }
    assert statuses == {"append_only": ("INSTALLED", True), "append_only_truncate": ("INSTALLED", True)}


def test_the_refusal_names_the_schema_the_table_and_the_operation():
    event = audit_row()
    with (
        pytest.raises(DatabaseError, match=r"rows of entitlements\.security_events are append-only: DELETE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM entitlements.security_events WHERE event_id = %s", [event.pk])


def test_a_replica_session_is_not_stopped_by_the_append_only_triggers():
    event = audit_row()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(UPDATE, [event.pk])
    assert SecurityEvent.objects.get(pk=event.pk).actor_username == "forged"


def test_pgtrigger_ignore_in_python_does_not_reach_the_triggers_of_a_schema_qualified_table():
    """pgtrigger.ignore() sends '{<db_table>:<pgid>,<pgid>}' as a text array; the quotes in our db_table
    ('entitlements"."security_events') make it a malformed array literal, and the trigger's ignore check swallows
    the error: nothing is ignored."""
    event = audit_row()
    with pgtrigger.ignore("entitlements.SecurityEvent:append_only"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(UPDATE, [event.pk])


def test_a_session_that_names_a_trigger_in_the_pgtrigger_ignore_setting_is_not_stopped():
    event = audit_row()
    (append_only, _) = SecurityEvent._meta.triggers
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pgtrigger.ignore', %s, true)", ["{" + append_only.get_pgid(SecurityEvent) + "}"]
        )
        cursor.execute(UPDATE, [event.pk])
    assert SecurityEvent.objects.get(pk=event.pk).actor_username == "forged"
