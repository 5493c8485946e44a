"""workflow_project.postgresql: Django's backend, reading timestamptz with psycopg's C loader."""
import datetime

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import pq

from workflow_project.postgresql.base import TIMESTAMPTZ_OID, UtcTimestamptzLoader

pytestmark = pytest.mark.django_db

VALUES = [
    "2026-06-01 12:00:00.5-07:30",
    "2026-03-29 01:59:59.999999+00",
    "1999-12-31 23:59:59+14",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "2024-02-29 12:00:00.000001+05:45",
]


def test_the_default_database_uses_this_backend_and_the_c_loader():
    assert connection.settings_dict["ENGINE"] == "workflow_project.postgresql"
    assert connection.vendor == "postgresql"
    connection.ensure_connection()
    assert pq.__impl__ in ("c", "binary")  # psycopg[binary] is a requirement
    assert connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT) is UtcTimestamptzLoader
    with connection.cursor() as cursor:
        assert cursor.cursor.adapters.get_loader(TIMESTAMPTZ_OID, pq.Format.TEXT) is UtcTimestamptzLoader


def test_values_are_the_instants_djangos_loader_gives_in_utc():
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"%s::timestamptz" for _ in VALUES), VALUES)
        fast = cursor.fetchone()

    class DjangoLoader(BaseTzLoader):
        timezone = datetime.timezone.utc

    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("timestamptz", DjangoLoader)
        cursor.execute("SELECT " + ", ".join(f"%s::timestamptz" for _ in VALUES), VALUES)
        django = cursor.fetchone()
    assert fast == django
    assert all(value.tzinfo is datetime.timezone.utc for value in fast)
    assert fast[0] == datetime.datetime(2026, 6, 1, 19, 30, 0, 500000, tzinfo=datetime.timezone.utc)


def test_orm_reads_and_writes_round_trip(make_task):
    from tasks.models import WorkflowTask

    due = datetime.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
    task = make_task("intake", due_date=due)
    loaded = WorkflowTask.objects.get(pk=task.pk)
    assert loaded.due_date == due and loaded.due_date.tzinfo is datetime.timezone.utc
    assert WorkflowTask.objects.filter(pk=task.pk, due_date=due).exists()
