"""The time limits PostgreSQL holds the application's sessions to, and the one way a long job lifts one.

Settings (workflow_project/settings.py) send them as connection options; behind PgBouncer in transaction mode the
database roles carry them instead (`ALTER ROLE ... SET`, from `session_timeouts()`).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.transaction import TransactionManagementError

logger = logging.getLogger(__name__)


def session_timeouts() -> dict[str, int]:
    """PostgreSQL setting name -> milliseconds (0: no limit), as configured; for `ALTER ROLE r SET name = ms`."""
    return {
        "statement_timeout": settings.DATABASE_STATEMENT_TIMEOUT,
        "lock_timeout": settings.DATABASE_LOCK_TIMEOUT,
        "idle_in_transaction_session_timeout": settings.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT,
    }


def statement_timeout_lift(*, reason: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """No statement timeout for the rest of the current transaction (SET LOCAL), for a job whose statements grow
    with whole tables rather than with one request or one batch (refreshing a materialized view, counting a
    backlog). `reason` says which; it goes to the debug log.

    The lock timeout stays: a job that waits that long for a lock should fail and run again later rather than
    queue every request behind it. Only inside a transaction, so that the limit comes back when it ends, even on
    a connection that a web or worker process goes on using.
    """
    connection = connections[using]
    if not connection.in_atomic_block:
        raise TransactionManagementError("statement_timeout_lift only works inside transaction.atomic()")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
    logger.debug("statement timeout lifted for this transaction: %s", reason)


def statement_timeout_lift_for_migrate(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """pre_migrate receiver: migrations may build indexes or rewrite tables of any size, so `migrate` runs
    without a statement timeout (session-wide: each migration is its own transaction)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")


def statement_timeout_restore_after_migrate(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate receiver: back to the session's configured limit (the test database is migrated on the
    connection the tests then use)."""
    with connections[using].cursor() as cursor:
        cursor.execute("RESET statement_timeout")
