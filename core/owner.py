"""Run a block on a connection that logs in as the owner role (settings.MIGRATE_DATABASE) instead of its own login:
migrations, and the test database's creation. The database name stays the connection's own (the test database's
under tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections

CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT", "OPTIONS")


@contextmanager
def connected_as_owner(alias: str = "default") -> Iterator[None]:
    connection = connections[alias]
    owner = settings.MIGRATE_DATABASE
    if alias != "default" or all(connection.settings_dict.get(key) == owner.get(key) for key in CREDENTIALS[:-1]):
        yield
        return
    if connection.in_atomic_block:
        raise RuntimeError("cannot log in as the owner inside a transaction: its connection would be closed")
    saved = {key: connection.settings_dict.get(key) for key in CREDENTIALS}
    connection.close()
    # The owner's own options only (TLS and the like): not the role a shared login acts as.
    connection.settings_dict.update(
        {key: owner.get(key, {} if key == "OPTIONS" else saved[key]) for key in CREDENTIALS}
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)
