"""API token lookups remembered per database connection, forgotten the moment any token or user changes.

Every API request starts with the token lookup: a round trip that cost about 0.3 ms of the web process's CPU and
0.1 ms of PostgreSQL's, 8 % of claim-next throughput at 16 clients (bench/claim.py). A connection that LISTENs
on `auth_changed` remembers the user rows its lookups found. Triggers on `authtoken_token` and
`entitlements.users` NOTIFY `auth_changed` when either changes (entitlements migration 0006), and PostgreSQL sends
the notification to every listening connection as the change commits. Each request first reads whatever the
server has sent to its idle connection, without a round trip and without waiting; a notification, or a connection
that turned out closed, forgets everything.

So a revoked token or a deactivated user is refused from the first request that starts after the server has
forwarded the notification (a fraction of a millisecond after the commit), as a lookup would. What is remembered
is the row, never a User instance: every request gets a fresh one (Django keeps permission caches on instances).

Used only where the notification can reach the connection: persistent connections (CONN_MAX_AGE > 0), no
connection pool (`DATABASE_POOL`), in autocommit outside transactions (a request in an atomic block, as in most
tests, looks its token up: a change made earlier in that transaction has notified no one yet). Behind PgBouncer
in transaction mode LISTEN does not work: set `API_TOKEN_MEMORY=false` there. An entry is looked up again after
`MAX_AGE_SECONDS` in any case, so a missed notification is not remembered for long, and none is used when the
connection has made no round trip for `TRUSTED_AFTER_ROUND_TRIP_SECONDS` (see there).

The lookup doubles as the request's connection health check (`workflow_project.db.fetch_one_read_only`); a
remembered one checks the connection by reading it instead: a connection the server closed reads as closed.
"""
from __future__ import annotations

import time

import psycopg
from django.conf import settings
from psycopg import OperationalError, pq

CHANNEL = "auth_changed"
MAX_ENTRIES = 1024
MAX_AGE_SECONDS = 10.0
# A remembered lookup is used only this soon after the connection's last lookup, a real round trip: reading the
# socket sees a connection the server closed, not one that died silently (host crash, failover, a dropped NAT
# entry). After an idle spell the lookup runs again and, as before, is the request's health check.
TRUSTED_AFTER_ROUND_TRIP_SECONDS = 1.0


class TokenMemory:
    """What one database connection's token lookups found, while nothing has changed since."""

    def __init__(self, raw_connection):
        self.raw = raw_connection
        self.rows: dict[str, tuple[float, tuple]] = {}
        # Counts notifications: a lookup whose answer arrived together with one is not remembered (see remember).
        self.generation = 0
        self.server_said_goodbye = False
        self.last_round_trip = time.monotonic()  # made just now, by LISTEN
        raw_connection.add_notify_handler(self._forget)
        raw_connection.add_notice_handler(self._on_notice)

    def _forget(self, _notify=None) -> None:
        self.generation += 1
        self.rows.clear()

    def _on_notice(self, diagnostic) -> None:
        # A server ending the session (pg_terminate_backend, shutdown) sends a FATAL error before it closes the
        # socket; on an idle connection libpq hands it over as a notice.
        if diagnostic.severity_nonlocalized in ("FATAL", "PANIC"):
            self.server_said_goodbye = True
            self._forget()

    def connection_alive(self) -> bool:
        """Read what the server sent since the last statement (notifications, or that it closed the connection)."""
        pgconn = self.raw.pgconn
        if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return False
        try:
            pgconn.consume_input()  # libpq's socket never blocks: this takes only what has arrived
        except OperationalError:
            return False  # the server closed it
        while (notify := pgconn.notifies()) is not None:  # also hands other messages to _on_notice
            pgconn.notify_handler(notify)  # psycopg passes it on to _forget
        return pgconn.status == pq.ConnStatus.OK and not self.server_said_goodbye

    def get(self, key: str) -> tuple | None:
        entry = self.rows.get(key)
        if entry is None:
            return None
        now = time.monotonic()
        if now - self.last_round_trip > TRUSTED_AFTER_ROUND_TRIP_SECONDS:
            return None
        remembered_at, row = entry
        if now - remembered_at > MAX_AGE_SECONDS:
            del self.rows[key]
            return None
        return row

    def remember(self, key: str, row: tuple, *, looked_up_in_generation: int) -> None:
        """Keep a lookup's row, unless a notification came in since the lookup began (psycopg hands over those
        that arrive with a statement's answer): its row may predate the change."""
        now = self.last_round_trip = time.monotonic()
        if looked_up_in_generation != self.generation:
            return
        if len(self.rows) >= MAX_ENTRIES:
            self.rows.clear()
        self.rows[key] = (now, row)


def token_memory(connection) -> TokenMemory | None:
    """The connection's token memory, or None where a notification might not reach it (see the module doc).

    A connection gets its memory on its first request after it was opened: LISTEN first, so that no change
    committed after the lookup it remembers can go unnoticed. Later requests read the connection first
    (`connection_alive`): one the server closed is closed here, as Django's health check would, and the lookup
    opens a new one. A server that refuses LISTEN (a hot standby) gets no memory on that connection.
    """
    raw = connection.connection
    if (
        raw is None
        or not settings.API_TOKEN_MEMORY
        or connection.in_atomic_block
        or not connection.get_autocommit()
        or connection.settings_dict.get("CONN_MAX_AGE") == 0
        or getattr(connection, "_token_memory_refused_by", None) is raw
    ):
        return None
    memory = getattr(connection, "_token_memory", None)
    if memory is not None and memory.raw is raw:
        if memory.connection_alive():
            return memory
        connection.close()
        return None
    try:
        raw.execute(f"LISTEN {CHANNEL}")
    except OperationalError:
        connection.close()  # the connection is gone; the lookup opens a new one
        return None
    except psycopg.Error:
        connection._token_memory_refused_by = raw
        return None
    memory = connection._token_memory = TokenMemory(raw)
    return memory
