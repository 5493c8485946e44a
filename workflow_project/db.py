"""Database helpers the ORM does not offer."""
from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.postgresql.base import CursorDebugWrapper, ServerBindingCursor
from django.db.backends.utils import CursorWrapper


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
    For the few statements on the hottest paths (claim-next, token lookup) that costs as much as running
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
