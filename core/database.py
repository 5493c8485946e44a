"""Why the database cannot be reached, in one line a person can act on; and what a working connection is like.

libpq reports a failed connection as several lines, one per address it tried ("connection to server at "X", port
N failed: ..."), with hints between; a TLS failure among refused addresses is the one worth reading. Written by
hand: psycopg hands over libpq's text and no library classifies it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.backends.base.base import BaseDatabaseWrapper

ATTEMPT = re.compile(
    r'connection to server (?:at "(?P<host>[^"]*)"(?: \([^)]*\))?, port (?P<port>\d+)|on socket "(?P<socket>[^"]*)")'
    r" failed: (?P<reason>.*)"
)

# (words in libpq's message, what they mean for whoever set DATABASE_URL), most specific first.
TLS_PROBLEMS = (
    (
        "does not match host name",
        "the server's certificate is not for the host name in DATABASE_URL, as sslmode=verify-full requires",
    ),
    (
        "certificate verify failed",
        "the server's certificate is not signed by a CA in sslrootcert (or it has expired)",
    ),
    ("root certificate file", "the CA file named by sslrootcert cannot be used"),
    ("requires a valid client certificate", "the server requires a client certificate (sslcert and sslkey)"),
    ("private key file", "the client key named by sslkey cannot be used"),
    ("certificate file", "the client certificate named by sslcert cannot be used"),
    ("server does not support ssl", "the server does not offer TLS, and sslmode requires it"),
    ("ssl", "the TLS handshake failed"),
)


def connection_failure_reason(exc: BaseException) -> str:
    """One line naming why a connection failed: `TLS: <meaning> (<libpq's words>; server <host:port>)` for TLS
    problems, otherwise libpq's own words for the most telling address it tried."""
    attempts = [match for line in str(exc).splitlines() if (match := ATTEMPT.search(line))]
    if not attempts:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return first.removeprefix("connection failed: ")
    for words, meaning in TLS_PROBLEMS:
        for attempt in attempts:
            if words in attempt["reason"].lower():
                return f"TLS: {meaning} ({_reason(attempt)}; server {_server(attempt)})"
    # Not TLS: the last address tried is the one libpq got furthest with (it tries them in order).
    attempt = attempts[-1]
    return f"{_reason(attempt)} (server {_server(attempt)})"


def _reason(attempt: re.Match) -> str:
    return attempt["reason"].removeprefix("FATAL:").strip()


def _server(attempt: re.Match) -> str:
    return f"{attempt['host']}:{attempt['port']}" if attempt["host"] is not None else attempt["socket"]


@dataclass(frozen=True)
class ConnectionFacts:
    server_version: str
    user: str
    database: str
    tls: str  # "TLSv1.3 (sslmode=verify-full)", or "off"
    timeouts: dict[str, str]  # setting -> the session's value, as PostgreSQL shows it


def connection_facts(connection: BaseDatabaseWrapper) -> ConnectionFacts:
    """Connect (raising the driver's error if that fails) and describe the session the application gets."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_user, current_database(),"
            " (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl),"
            " current_setting('statement_timeout'), current_setting('lock_timeout'),"
            " current_setting('idle_in_transaction_session_timeout')"
        )
        version, user, database, tls_version, statement, lock, idle = cursor.fetchone()
    sslmode = connection.connection.info.get_parameters().get("sslmode", "prefer")  # only non-defaults are listed
    return ConnectionFacts(
        server_version=version,
        user=user,
        database=database,
        tls=f"{tls_version} (sslmode={sslmode})" if tls_version else "off",
        timeouts={
            "statement_timeout": statement,
            "lock_timeout": lock,
            "idle_in_transaction_session_timeout": idle,
        },
    )
