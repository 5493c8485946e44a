"""The database roles the system runs as, their grants, and the one way code raises itself to the maintenance role.

- workflow_owner: owns the schemas and runs migrations (DATABASE_MIGRATE_URL).
- workflow_app: what web processes and Celery workers log in as; DML only, no DDL, no TRUNCATE; history tables
  (those whose triggers call entitlements.refuse_history_rewrite) take INSERT and SELECT only. Row-level security
  applies to it.
- workflow_reporting: SELECT only, for a read replica or a BI tool.
- workflow_maintenance: archive, retention and erasure; holds workflow_app's grants plus UPDATE and DELETE of
  history. A login of this role may drop to workflow_app for everything else (DATABASE_SET_ROLE) and raise itself
  back only through `maintenance_role()`, so the code that rewrites history is the code that says so.

Roles are cluster-wide and have fixed names, so the SQL that checks them (refuse_history_rewrite) is static.
`manage.py create_database_roles` makes them; `grants_apply` runs after every migrate.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import psycopg
from django.db import connections

from core.database_url import hosts_netloc
from core.errors import PermissionDenied

OWNER = "workflow_owner"
APP = "workflow_app"
REPORTING = "workflow_reporting"
MAINTENANCE = "workflow_maintenance"
ROLES = (OWNER, APP, REPORTING, MAINTENANCE)

SCHEMAS = ("entitlements", "queues", "flowable", "onecms", "public")

# Functions that run with their owner's rights (SECURITY DEFINER) and who may call them.
DEFINER_FUNCTIONS = {
    "flowable.dashboards_refresh()": (APP,),
    "flowable.mining_refresh()": (APP,),
    "entitlements.ensure_access_audit_partitions(integer)": (APP,),
    "flowable.ensure_task_history_partitions(integer)": (APP,),
    "flowable.archive_partition_create(text, text, timestamp with time zone, timestamp with time zone)": (MAINTENANCE,),
    # Row-level security policies call these (docs/row-level-security.md); roles with BYPASSRLS never do.
    "flowable.process_instance_in_acting_queues(bigint)": (APP,),
    "flowable.task_reached_by_acting_queues(bigint)": (APP,),
    "flowable.task_in_acting_queues(bigint)": (APP,),
    "flowable.archived_task_in_acting_queues(bigint)": (APP,),
    "onecms.case_reached_by_acting_queues(bigint)": (APP,),
    "onecms.case_visible_to_acting_user(bigint)": (APP,),
    "onecms.process_instance_of_visible_case(bigint)": (APP,),
    "onecms.task_of_visible_case(bigint)": (APP,),
    "onecms.mapping_ids_with_hops_to(text[])": (APP,),
    # The case list's walk and count (cases 0010).
    "onecms.case_has_task_in_queues(bigint, text[])": (APP,),
    "onecms.case_scope_estimate(text[])": (APP,),
    # Database health (tasks/console/database_health.py): every session's statement and the standbys' lag, read
    # with the owner's pg_read_all_stats.
    "flowable.database_activity()": (APP,),
    "flowable.database_replication()": (APP,),
}

# Built-in roles a role holds. The owner reads the cluster's activity statistics (other logins' statements, the
# standbys' lag) for the database health functions above, so that the application role sees them only through
# those and for this database only. The application role itself holds no monitoring role: its sessions serve every
# request, and other sessions' statement text carries values row-level security would hide from it.
BUILTIN_ROLE_GRANTS = {OWNER: ("pg_read_all_stats",)}

APPEND_ONLY_TABLES_SQL = """
SELECT DISTINCT t.tgrelid::regclass::text
  FROM pg_trigger t
 WHERE t.tgfoid = to_regprocedure('entitlements.refuse_history_rewrite()')
 ORDER BY 1
"""


# Partitions of tables under row-level security: policies apply to queries of the parent only, so the application
# role reaches these rows through the parent alone (access through a parent checks the parent's privileges).
ROW_SECURED_PARTITIONS_SQL = """
SELECT c.oid::regclass::text
  FROM pg_class c
  JOIN pg_inherits i ON i.inhrelid = c.oid
  JOIN pg_class parent ON parent.oid = i.inhparent
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relispartition AND parent.relrowsecurity AND n.nspname = ANY(%s)
 ORDER BY 1
"""


@dataclass(frozen=True)
class RoleAttributes:
    """What CREATE ROLE / ALTER ROLE gives each role beyond LOGIN."""

    bypass_rls: bool = False
    createdb: bool = False


ROLE_ATTRIBUTES = {
    OWNER: RoleAttributes(),
    APP: RoleAttributes(),
    # The reporting and maintenance roles read every row by design (reports, archive, retention): row-level
    # security is the application's defence against a query that forgets its access filter.
    REPORTING: RoleAttributes(bypass_rls=True),
    MAINTENANCE: RoleAttributes(bypass_rls=True),
}


def existing_roles(cursor) -> set[str]:
    cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [list(ROLES)])
    return {name for (name,) in cursor.fetchall()}


def append_only_tables(cursor) -> list[str]:
    """Tables (partitions included) whose triggers refuse UPDATE, DELETE and TRUNCATE of their rows."""
    cursor.execute(APPEND_ONLY_TABLES_SQL)
    return [name for (name,) in cursor.fetchall()]


def grants_statements(cursor) -> list[str]:
    """The GRANT and REVOKE statements that give each existing role exactly its rights on our schemas."""
    roles = existing_roles(cursor)
    cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [list(SCHEMAS)])
    schemas = sorted(name for (name,) in cursor.fetchall())
    statements = []
    readers = [role for role in (APP, REPORTING, MAINTENANCE) if role in roles]
    for schema in schemas:
        if readers:
            statements.append(f"GRANT USAGE ON SCHEMA {schema} TO {', '.join(readers)}")
        if APP in roles:
            statements += [
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {APP}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {APP}",
            ]
        if REPORTING in roles:
            statements.append(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {REPORTING}")
    if APP in roles:
        statements.append(f"REVOKE INSERT, UPDATE, DELETE ON public.django_migrations FROM {APP}")
        cursor.execute(ROW_SECURED_PARTITIONS_SQL, [schemas])
        for (partition,) in cursor.fetchall():
            statements.append(f"REVOKE ALL ON {partition} FROM {APP}")
            if MAINTENANCE in roles:  # it held them through membership of the application role; the archive job
                # moves strays out of a default partition by name (tasks/sla/archive.py)
                statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {partition} TO {MAINTENANCE}")
    for table in append_only_tables(cursor):
        if APP in roles:
            statements.append(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {APP}")
        if MAINTENANCE in roles:
            statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {MAINTENANCE}")
    for function, callers in DEFINER_FUNCTIONS.items():
        cursor.execute("SELECT to_regprocedure(%s) IS NOT NULL", [function])
        if not cursor.fetchone()[0]:
            continue
        statements.append(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
        granted = [role for role in callers if role in roles]
        if granted:
            statements.append(f"GRANT EXECUTE ON FUNCTION {function} TO {', '.join(granted)}")
    return statements


def grants_apply(cursor) -> None:
    """Give the roles their rights on every object that exists now (run by the owner after each migrate)."""
    for statement in grants_statements(cursor):
        cursor.execute(statement)


@functools.cache
def libpq_keywords() -> frozenset[str]:
    """The connection parameters libpq knows (PQconndefaults)."""
    return frozenset(option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults())


def database_url(
    database: dict, *, user: str | None = None, password: str | None = None, name: str | None = None
) -> str:
    """A postgresql:// URL for Django database settings, with another user and database name if given."""
    user = user or database.get("USER") or ""
    password = database.get("PASSWORD") if password is None and user == database.get("USER") else password
    userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = database.get("HOST") or ""
    # libpq's own options (dj_database_url reads connect_timeout as a number); not Django's or psycopg's (a pool, a
    # flag, prepare_threshold), which a connection string may not carry.
    query = {
        key: str(value)
        for key, value in (database.get("OPTIONS") or {}).items()
        if key in libpq_keywords()
        and (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)))
    }
    if host.startswith("/"):
        query["host"] = host
        netloc = f"{userinfo}@"
    else:
        netloc = f"{userinfo}@{hosts_netloc(host, database.get('PORT'))}"
    url = f"postgresql://{netloc}/{quote(name or database.get('NAME') or '', safe='')}"
    return url + (f"?{urlencode(query)}" if query else "")


RAISE_TO_MAINTENANCE_SQL = """
SELECT current_user, CASE
    WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role)s) THEN 'absent'
    WHEN pg_has_role(session_user, %(role)s, 'MEMBER') THEN set_config('role', %(role)s, true)
    ELSE 'denied'
END
"""


class MaintenanceRoleUnavailable(PermissionDenied):
    code = "maintenance_role_required"


@contextmanager
def maintenance_role(*, using: str = "default") -> Iterator[None]:
    """Act as the maintenance role inside the block (SET LOCAL ROLE; the role before it is restored on the way out,
    and a rolled-back block restores it by itself).

    Must be entered inside a transaction. The login must hold the role (a maintenance worker's login does; the web's
    application login does not, and gets MaintenanceRoleUnavailable). Where the roles were never created (a database
    run by one owner login) there is nothing to raise to and the block runs as it is.
    """
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("maintenance_role() must be used inside transaction.atomic()")
    with connection.cursor() as cursor:
        cursor.execute(RAISE_TO_MAINTENANCE_SQL, {"role": MAINTENANCE})
        previous, outcome = cursor.fetchone()
    if outcome == "denied":
        raise MaintenanceRoleUnavailable(
            f"this job rewrites history and must run as the {MAINTENANCE} database role: run it with a "
            f"DATABASE_URL that logs in as {MAINTENANCE} (the maintenance worker's)",
        )
    yield
    if outcome != "absent" and not connection.needs_rollback:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('role', %s, true)", [previous])


def role_statements(
    cursor,
    *,
    owner_createdb: bool = False,
    passwords: dict[str, str] | None = None,
    timeouts: dict[str, int] | None = None,
) -> list:
    """CREATE (or ALTER, when it exists) each role to exactly its attributes; the maintenance role holds the app's.
    `timeouts` (setting -> milliseconds, core.timeouts.session_timeouts) become the defaults of the roles that
    serve requests and jobs, so they hold behind PgBouncer too, where connection options do not reach."""
    from psycopg import sql

    passwords = passwords or {}
    present = existing_roles(cursor)
    statements = []
    for role in ROLES:
        attributes = ROLE_ATTRIBUTES[role]
        options = [
            "LOGIN",
            "NOSUPERUSER",
            "NOCREATEROLE",
            "NOREPLICATION",
            "INHERIT",
            "BYPASSRLS" if attributes.bypass_rls else "NOBYPASSRLS",
            "CREATEDB" if role == OWNER and owner_createdb else "NOCREATEDB",
        ]
        verb = "ALTER" if role in present else "CREATE"
        statement = sql.SQL("{} ROLE {} WITH {}").format(
            sql.SQL(verb), sql.Identifier(role), sql.SQL(" ".join(options))
        )
        if passwords.get(role):
            statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(passwords[role]))
        statements.append(statement)
    statements.append(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP), sql.Identifier(MAINTENANCE)))
    for role, builtins in BUILTIN_ROLE_GRANTS.items():
        for builtin in builtins:
            statements.append(sql.SQL("GRANT {} TO {}").format(sql.Identifier(builtin), sql.Identifier(role)))
    for role in (APP, MAINTENANCE):
        for name, milliseconds in (timeouts or {}).items():
            statements.append(
                sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    sql.Identifier(role), sql.Identifier(name), sql.Literal(int(milliseconds))
                )
            )
    return statements


def database_statements(cursor, *, database: str) -> list:
    """Create the database owned by the owner role if it is missing; let the other roles connect to it."""
    from psycopg import sql

    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
    statements = []
    if cursor.fetchone() is None:
        statements.append(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(OWNER))
        )
    statements.append(
        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}, {}, {}").format(
            sql.Identifier(database), sql.Identifier(APP), sql.Identifier(REPORTING), sql.Identifier(MAINTENANCE)
        )
    )
    return statements


def roles_ensure(
    conninfo: str,
    *,
    database: str | None = None,
    owner_createdb: bool = False,
    passwords: dict[str, str] | None = None,
    timeouts: dict[str, int] | None = None,
) -> None:
    """Make the roles (and the database, if named) through an admin connection. Idempotent; safe to run at once
    from several processes (a role another run created meanwhile is altered instead)."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as admin, admin.cursor() as cursor:
        # Serialise concurrent runs on this cluster: CREATE ROLE has no IF NOT EXISTS.
        cursor.execute("SELECT pg_advisory_lock(hashtext('workflow create_database_roles'))")
        try:
            for statement in role_statements(
                cursor, owner_createdb=owner_createdb, passwords=passwords, timeouts=timeouts
            ):
                cursor.execute(statement)
            if database:
                for statement in database_statements(cursor, database=database):
                    cursor.execute(statement)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(hashtext('workflow create_database_roles'))")
