"""Policy triggers declared on models with django-pgtrigger: tables whose rows, once written, stay as written.

pgtrigger generates each trigger's function and the migrations that install it; its objects are named pgtrigger_*
and have no file under `<app>/sql/` (tests/project/sql_sources.py skips them).

What these triggers do not stop, as of django-pgtrigger 4.17 (issue 22's grants must; tests in
tests/entitlements/test_append_only_triggers.py pin each point):
- a session with `session_replication_role = replica`: pgtrigger creates its triggers without ENABLE ALWAYS;
- a session that names a trigger in the `pgtrigger.ignore` setting, which any role may set.
pgtrigger.ignore() itself does nothing on our tables: it sends the schema-qualified db_table inside an array
literal whose quotes make it malformed, and the trigger's ignore check swallows the error.
"""

from __future__ import annotations

import pgtrigger

REFUSAL = (
    "RAISE EXCEPTION 'rows of %.% are append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP "
    "USING ERRCODE = 'insufficient_privilege';"
)


class AppendOnly(pgtrigger.Protect):
    """pgtrigger.Protect refusing UPDATE and DELETE of every row, with our message and SQLSTATE 42501."""

    def __init__(self, *, name: str = "append_only") -> None:
        super().__init__(name=name, operation=pgtrigger.Update | pgtrigger.Delete)

    def get_func(self, model) -> str:
        return REFUSAL


def append_only(*, name: str = "append_only") -> list[pgtrigger.Trigger]:
    """The triggers that keep a table append-only: rows cannot be updated or deleted, the table cannot be emptied.

    TRUNCATE fires no row trigger and Protect cannot guard it (a statement-level Protect needs transition tables,
    which TRUNCATE has none of), so a plain statement trigger refuses it, before anything is removed.
    """
    return [
        AppendOnly(name=name),
        pgtrigger.Trigger(
            name=f"{name}_truncate",
            level=pgtrigger.Statement,
            when=pgtrigger.Before,
            operation=pgtrigger.Truncate,
            func=REFUSAL,
        ),
    ]
