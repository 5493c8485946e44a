"""What the application needs of PgBouncer in transaction mode (DATABASE_PGBOUNCER), checked where it can be.

- DATABASE_SET_ROLE cannot travel as a connection option through PgBouncer: the login must act as that role by its
  default in the database (`ALTER ROLE login IN DATABASE db SET role = ...`), which survives PgBouncer's DISCARD ALL
  and RESET ROLE. Each process checks it on its first connection to a database, and refuses one that runs as
  another role (a worker's maintenance login would otherwise bypass row-level security).
- Prepared statements (DATABASE_PREPARED_STATEMENTS) are session state: they need PgBouncer 1.21 or newer with
  max_prepared_statements above 0, which then tracks each client's statements across server sessions. The start-up
  check asks PgBouncer's console (database `pgbouncer`; the login must be in stats_users) for its version and
  that setting.
"""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS

from .db_roles import database_url

PREPARED_STATEMENTS_SINCE = (1, 21)
CONSOLE_DATABASE = "pgbouncer"
CONSOLE_CONNECT_TIMEOUT_SECONDS = 10

_databases_acting_as_role: set[tuple] = set()


def acting_role_verifier(*, database: dict, role: str):
    """A connection_created receiver (behind PgBouncer, with DATABASE_SET_ROLE): a session of the login `database`
    names acts as `role`, or the connection is refused with the statement that makes it so. Asked once per process
    and database; other logins on the connection (the owner's, migrating) are not asked."""
    login = tuple(database.get(name) for name in ("HOST", "PORT", "USER"))

    def verify(sender, connection, **kwargs) -> None:
        if connection.alias != DEFAULT_DB_ALIAS:
            return
        if tuple(connection.settings_dict.get(name) for name in ("HOST", "PORT", "USER")) != login:
            return
        key = (*login, connection.settings_dict.get("NAME"))
        if key in _databases_acting_as_role:
            return
        with connection.wrap_database_errors, connection.connection.cursor() as cursor:
            cursor.execute("SELECT current_user, session_user, current_database()")
            current, user, name = cursor.fetchone()
        if current != role:
            raise ImproperlyConfigured(
                f"DATABASE_SET_ROLE={role}, but this session runs as {current}: behind PgBouncer "
                "(DATABASE_PGBOUNCER=true) the role cannot be sent as a connection option, so the login must act as "
                f"it by default. As a superuser: ALTER ROLE {user} IN DATABASE {name} SET role = {role}"
            )
        _databases_acting_as_role.add(key)

    return verify


def version_number(version: str) -> tuple[int, ...]:
    """(1, 18, 0) from PgBouncer's SHOW VERSION text, "PgBouncer 1.18.0"."""
    found = re.search(r"(\d+(?:\.\d+)+)", version)
    if found is None:
        raise ValueError(f"not a PgBouncer version: {version!r}")
    return tuple(int(part) for part in found.group(1).split("."))


def prepared_statements_refusal(*, version: str, max_prepared_statements: int) -> str | None:
    """Why prepared statements cannot be used behind this PgBouncer (its SHOW VERSION text and setting), or None."""
    need = "PgBouncer 1.21 or newer with max_prepared_statements above 0"
    if version_number(version) < PREPARED_STATEMENTS_SINCE:
        return (
            f"DATABASE_PREPARED_STATEMENTS=true needs {need}; DATABASE_URL leads to {version}, which passes "
            "prepared statements to whichever server session runs the next transaction. Unset "
            "DATABASE_PREPARED_STATEMENTS, or upgrade PgBouncer and set max_prepared_statements."
        )
    if max_prepared_statements <= 0:
        return (
            f"DATABASE_PREPARED_STATEMENTS=true needs {need}; DATABASE_URL leads to {version} with "
            "max_prepared_statements = 0. Set it in pgbouncer.ini (e.g. 200), or unset DATABASE_PREPARED_STATEMENTS."
        )
    return None


def console_facts(database: dict) -> tuple[str, int]:
    """PgBouncer's version text and max_prepared_statements (0 where the version has no such setting), read from
    its console with the application's login."""
    import psycopg

    url = database_url(database, name=CONSOLE_DATABASE)
    with (
        psycopg.connect(url, autocommit=True, connect_timeout=CONSOLE_CONNECT_TIMEOUT_SECONDS) as console,
        console.cursor() as cursor,
    ):
        (version,) = cursor.execute("SHOW VERSION").fetchone()
        cursor.execute("SHOW CONFIG")
        columns = [column.name for column in cursor.description]
        config = {row[columns.index("key")]: row[columns.index("value")] for row in cursor.fetchall()}
    return version, int(config.get("max_prepared_statements") or 0)


def prepared_statements_support_check(database: dict) -> None:
    """Refuse to start (ImproperlyConfigured) unless the PgBouncer in DATABASE_URL keeps prepared statements."""
    import psycopg

    try:
        version, max_prepared_statements = console_facts(database)
    except psycopg.Error as exc:
        user = database.get("USER")
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ImproperlyConfigured(
            "DATABASE_PREPARED_STATEMENTS=true behind PgBouncer: cannot read its version and max_prepared_statements "
            f"from its console (database {CONSOLE_DATABASE}) as {user}: {reason}. List {user} in PgBouncer's "
            "stats_users, or unset DATABASE_PREPARED_STATEMENTS."
        ) from exc
    refusal = prepared_statements_refusal(version=version, max_prepared_statements=max_prepared_statements)
    if refusal:
        raise ImproperlyConfigured(refusal)
