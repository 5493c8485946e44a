"""The drift check: every function, view, materialized view, trigger and row-level security policy in our schemas
against `<app>/sql/<name>.sql`.

The check runs on a psycopg connection of the owner role (the application role may not run DDL; tests/conftest.py:
owner_connection). A file is compared by running it: inside a savepoint the database's definitions are read, the file is executed,
they are read again and the savepoint is rolled back. Whatever PostgreSQL normalises (whitespace of a view, the
form of a trigger's WHEN) is normalised on both sides, so a file matches exactly when running it changes nothing.
A materialized view has no CREATE OR REPLACE: it is dropped inside the savepoint before its file runs.

A policy is named by its table's schema and its own name, and its definition includes whether its table has row-level
security enabled (and forced), so a table whose security was turned off drifts from every policy file on it. An app
that adds a policy to another app's table names its file with that schema: cases/sql/flowable.<policy>.sql.

Objects django-pgtrigger makes (its trigger functions and triggers are named pgtrigger_*, its helper
_pgtrigger_should_ignore) are declared on the models and have no file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.conf import settings

# Each app's objects live in its schema; a file's name is its object's name.
APP_SCHEMAS = {"tasks": "flowable", "entitlements": "entitlements", "queues": "queues", "cases": "onecms"}
SCHEMAS = [*APP_SCHEMAS.values(), "public"]

DRIFT = "differs from its file"
NO_FILE = "has no file"
NO_OBJECT = "has no object in the database"

DEFINITIONS_SQL = """
SELECT n.nspname || '.' || p.proname, 'function', p.oid::regprocedure::text || E'\\n' || pg_get_functiondef(p.oid)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY (%(schemas)s) AND p.prokind IN ('f', 'p', 'w')
   AND p.proname NOT LIKE 'pgtrigger\\_%%' AND p.proname <> '_pgtrigger_should_ignore'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT n.nspname || '.' || c.relname,
       CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END,
       pg_get_viewdef(c.oid)
       || coalesce(E'\\n' || (SELECT string_agg(pg_get_indexdef(i.indexrelid), E'\\n' ORDER BY 1)
                                FROM pg_index i WHERE i.indrelid = c.oid), '')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY (%(schemas)s) AND c.relkind IN ('v', 'm')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT n.nspname || '.' || t.tgname, 'trigger', pg_get_triggerdef(t.oid) || E'\\nenabled: ' || t.tgenabled::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY (%(schemas)s) AND NOT t.tgisinternal AND t.tgname NOT LIKE 'pgtrigger\\_%%'
UNION ALL
SELECT n.nspname || '.' || pol.polname, 'policy',
       format(E'ON %%s AS %%s FOR %%s TO %%s\\nUSING (%%s)\\nWITH CHECK (%%s)\\nrow security: %%s',
              c.oid::regclass,
              CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
              CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                              WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
              (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ', ' ORDER BY r)
                 FROM unnest(pol.polroles) AS r),
              pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid),
              CASE WHEN NOT c.relrowsecurity THEN 'disabled' WHEN c.relforcerowsecurity THEN 'forced'
                   ELSE 'enabled' END)
  FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY (%(schemas)s)
"""


@dataclass(frozen=True)
class Problem:
    name: str
    problem: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.name} {self.problem}" + (f"\n{self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Definition:
    kind: str
    text: str


def sql_files(base_dir: Path | None = None) -> dict[str, Path]:
    """schema.name → the file holding that object's current definition (a file named schema.name.sql names its
    schema itself: a policy an app adds to another app's table)."""
    base_dir = base_dir or Path(settings.BASE_DIR)
    return {
        path.stem if "." in path.stem else f"{schema}.{path.stem}": path
        for app, schema in APP_SCHEMAS.items()
        for path in sorted((base_dir / app / "sql").glob("*.sql"))
    }


def database_definitions(connection: psycopg.Connection) -> dict[str, Definition]:
    """schema.name → what the database holds under that name (all overloads of a function together)."""
    with connection.cursor() as cursor:
        cursor.execute(DEFINITIONS_SQL, {"schemas": SCHEMAS})
        rows = sorted(cursor.fetchall())
    definitions: dict[str, Definition] = {}
    for name, kind, text in rows:
        if name in definitions:
            previous = definitions[name]
            definitions[name] = Definition(f"{previous.kind}, {kind}", f"{previous.text}\n{text}")
        else:
            definitions[name] = Definition(kind, text)
    return definitions


def check(connection: psycopg.Connection, files: dict[str, Path] | None = None) -> list[Problem]:
    """Every difference between the database and the files: objects without a file, files without an object, and
    files whose definition differs from the database's. Needs a transaction (it runs the files in savepoints)."""
    files = sql_files() if files is None else files
    current = database_definitions(connection)
    problems = [Problem(name, NO_FILE) for name in sorted(current.keys() - files.keys())]
    problems += [Problem(name, NO_OBJECT, str(files[name])) for name in sorted(files.keys() - current.keys())]
    for name in sorted(files.keys() & current.keys()):
        problems += _drift(connection, name, files[name], current)
    return problems


def _drift(connection: psycopg.Connection, name: str, path: Path, current: dict[str, Definition]) -> list[Problem]:
    try:
        with connection.transaction():  # a savepoint, rolled back
            with connection.cursor() as cursor:
                if current[name].kind == "materialized view":
                    cursor.execute(f"DROP MATERIALIZED VIEW {name}")
                cursor.execute(path.read_text())
            after = database_definitions(connection)
            raise psycopg.Rollback
    except psycopg.Error as error:  # the file does not even run against this database
        return [Problem(name, DRIFT, f"{path} fails: {error}")]
    changed = sorted(key for key in current.keys() | after.keys() if current.get(key) != after.get(key))
    return [Problem(key, DRIFT, _diff(key, current.get(key), after.get(key), path)) for key in changed]


def _diff(name: str, database: Definition | None, file: Definition | None, path: Path) -> str:
    lines = difflib.unified_diff(
        database.text.splitlines() if database else [],
        file.text.splitlines() if file else [],
        fromfile=f"{name} in the database",
        tofile=f"{name} after running {path}",
        lineterm="",
    )
    return "\n".join(lines)
