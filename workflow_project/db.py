"""Database helpers the ORM does not offer."""
from __future__ import annotations

import inspect

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.postgresql.base import CursorDebugWrapper, ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init


class _PreparingCursor(ServerBindingCursor):
    """A psycopg cursor that binds parameters on the server and prepares every statement it runs."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Logs the statement with its parameters filled in, as Django logs its own (a server-bound cursor keeps no
    client-side text of what it sent)."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params) if params else sql):
            return CursorWrapper.execute(self, sql, params)


def prepared_cursor(using: str = DEFAULT_DB_ALIAS):
    """A Django cursor whose statements PostgreSQL parses and plans once per connection, then only executes.

    Django's cursors bind parameters on the client, so the server parses and plans every statement again.
    For the few statements on the hottest paths (claim-next) that costs as much as running
    them. Use it as `with prepared_cursor() as cursor:`; statements must be fixed text with `%s` parameters
    (a new text is a new prepared statement on each connection). Query logging, execute wrappers and
    Django's error translation work as with `connection.cursor()`. With DATABASE_PREPARED_STATEMENTS off the
    statements are bound on the server but not prepared.
    """
    connection = connections[using]
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        connection.validate_thread_sharing()
        raw = _PreparingCursor(connection.connection)
        return _PreparedDebugWrapper(raw, connection) if connection.queries_logged else connection.make_cursor(raw)


def prepared_fetch_one(statement: str, params, using: str = DEFAULT_DB_ALIAS):
    """Run `statement` as `prepared_cursor` would and return its first row (None if it has none), on a cursor
    the database connection keeps.

    For the statements every claim runs (claim-next): a new psycopg
    cursor (its adapters, a loader per column) and Django's cursor wrapper cost a claim more of the client's CPU
    than the rest of its Python; with 16 claimers on two cores the kept cursor gave 16 to 21 % more claims a second
    in three of four alternating rounds (8 % fewer in the fourth, on a machine whose speed swings). The kept
    cursor lives on the psycopg connection, so a reconnect (or another connection from the pool) gets its own.
    Errors are Django's, a broken transaction is refused as Django refuses it, and when queries are logged or an
    execute wrapper is installed the statement goes through `prepared_cursor`, so both still see it.
    """
    connection = connections[using]
    if connection.queries_logged or connection.execute_wrappers:
        with prepared_cursor(using) as cursor:
            cursor.execute(statement, params)
            return cursor.fetchone()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        connection.validate_thread_sharing()
        connection.validate_no_broken_transaction()
        cursor = _kept_cursor(connection.connection)
        cursor.execute(statement, params)
        return cursor.fetchone()


_KEPT_CURSOR = "_workflow_prepared_cursor"


def _kept_cursor(raw) -> _PreparingCursor:
    cursor = getattr(raw, _KEPT_CURSOR, None)
    if cursor is None or cursor.closed:
        cursor = _PreparingCursor(raw)
        setattr(raw, _KEPT_CURSOR, cursor)
    return cursor


class RowReader:
    """A model's concrete columns for a hand-written SELECT, and instances built from the rows, as the ORM builds them.

    `Model.from_db` alone takes the values as the driver returned them. The ORM first passes each value through
    its field's database converters: a JSONField's text is decoded there (Django reads jsonb as text, so that a
    field's own decoder applies), and a custom field's `from_db_value` runs. Skipping them hands callers a str
    where the model promises a dict. Get one with `row_reader(Model)`; write `SELECT {reader.columns} ...` (or
    `reader.columns_of("alias")`) and build with `reader.instance(row)`.

    Where `Model.__init__` would only store each value in the instance (the model keeps Django's `__init__` and
    `from_db`, its fields' attributes are Django's plain ones, and no pre_init or post_init receiver is connected),
    `instance` stores them itself: the same instance, without a setattr through a descriptor per field (7.0 ->
    4.4 µs a task in a tight loop; with 16 claimers on two cores, where cache misses multiply such costs, about
    0.06 ms of the client's CPU a claim).
    """

    def __init__(self, model, using: str):
        connection = connections[using]
        fields = model._meta.concrete_fields
        self.model = model
        self.using = using
        self.attnames = [field.attname for field in fields]
        self._quoted = [connection.ops.quote_name(field.column) for field in fields]
        self.columns = ", ".join(self._quoted)
        self._converters = []
        for index, field in enumerate(fields):
            column = field.get_col(model._meta.db_table)
            converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if converters:
                self._converters.append((index, column, converters))
        self._stores_plainly = _init_only_stores_values(model)

    def columns_of(self, alias: str) -> str:
        return ", ".join(f"{alias}.{column}" for column in self._quoted)

    def instance(self, row):
        if self._converters:
            connection = connections[self.using]
            row = list(row)
            for index, column, converters in self._converters:
                value = row[index]
                for converter in converters:
                    value = converter(value, column, connection)
                row[index] = value
        if self._stores_plainly and not pre_init.receivers and not post_init.receivers:
            instance = Model.__new__(self.model)
            state = instance._state = ModelState()
            state.adding = False
            state.db = self.using
            instance.__dict__.update(zip(self.attnames, row))
            return instance
        return self.model.from_db(self.using, self.attnames, row)


def _init_only_stores_values(model) -> bool:
    """Whether `model.from_db` with every concrete field's value only stores the values in the instance's __dict__:
    Django's own `__init__` and `from_db`, and each field's class attribute a plain deferred attribute (a foreign
    key's clears a cached related object, of which a new instance has none)."""
    if model.__init__ is not Model.__init__ or model.from_db.__func__ is not Model.from_db.__func__:
        return False
    return all(
        type(inspect.getattr_static(model, field.attname, None)) in (DeferredAttribute, ForeignKeyDeferredAttribute)
        for field in model._meta.concrete_fields
    )


_row_readers: dict[tuple[type, str], RowReader] = {}


def row_reader(model, using: str = DEFAULT_DB_ALIAS) -> RowReader:
    """The RowReader of `model` on the `using` database, built once per process."""
    key = (model, using)
    reader = _row_readers.get(key)
    if reader is None:
        reader = _row_readers[key] = RowReader(model, using)
    return reader
