"""Connections to the test database as the roles the application does not run as: the owner (DDL) and the
superuser (what only a superuser may do), for tests that must do or show such things."""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.db import connection

from core.db_roles import database_url


def owner_connect(**options) -> psycopg.Connection:
    return psycopg.connect(database_url(settings.MIGRATE_DATABASE, name=connection.settings_dict["NAME"]), **options)


def admin_connect(**options) -> psycopg.Connection:
    return psycopg.connect(database_url(settings.ADMIN_DATABASE, name=connection.settings_dict["NAME"]), **options)


def analyze(cursor, *tables: str) -> None:
    """ANALYZE the tables (all of ours with none named) inside the caller's transaction, through the test database's
    test_support.analyze (tests/conftest.py): the application role may not ANALYZE."""
    for table in tables or [None]:
        cursor.execute("SELECT test_support.analyze(%s)", [table])
