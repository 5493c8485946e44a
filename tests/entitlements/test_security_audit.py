"""The security audit is append-only in the database itself."""

import os
import subprocess

import pytest
from django.db import DatabaseError, connection, transaction

from entitlements.models import SecurityEvent
from entitlements.services import security_event_record


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entitlements.security_events SET actor_username = 'forged' WHERE event_id = %s",
        "DELETE FROM entitlements.security_events WHERE event_id = %s",
    ],
)
@pytest.mark.django_db
def test_update_or_delete_of_an_audit_row_fails(statement):
    event = security_event_record(event_type=SecurityEvent.Type.LOGIN_SUCCESS, actor_username="alice")
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [event.pk])


@pytest.mark.django_db
def test_truncate_of_the_audit_fails():
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE entitlements.security_events")


def test_update_from_psql_fails(committed_db):
    event = security_event_record(event_type=SecurityEvent.Type.LOGIN_SUCCESS, actor_username="alice")
    settings = connection.settings_dict
    # The login the tests use, acting as the application role as they do (DATABASE_SET_ROLE).
    env = {
        **os.environ,
        "PGPASSWORD": settings.get("PASSWORD") or "",
        "PGOPTIONS": settings["OPTIONS"].get("options", ""),
    }
    result = subprocess.run(
        [
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            settings["HOST"] or "127.0.0.1",
            "-p",
            str(settings["PORT"] or 5432),
            "-U",
            settings["USER"],
            "-d",
            settings["NAME"],
            "-c",
            f"UPDATE entitlements.security_events SET actor_username = 'x' WHERE event_id = {event.pk}",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode != 0
    assert "permission denied for table security_events" in result.stderr
    SecurityEvent.objects.get(pk=event.pk, actor_username="alice")
