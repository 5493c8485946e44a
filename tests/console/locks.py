"""A real lock wait for the database health tests: one session holds a queue row, another waits for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from tests.conftest import url_of_test_database

BLOCKER_SQL = "UPDATE queues.workflow_queues SET current_load = current_load WHERE queue_name = 'intake' /* blocker */"
WAITER_SQL = "UPDATE queues.workflow_queues SET intake_paused = intake_paused WHERE queue_name = 'intake' /* waiter */"
# Long enough for a browser to log in and open the page; the test releases the lock itself well before.
WAIT_LIMIT = "120s"
SETTLE_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class LockWait:
    blocker_pid: int
    waiter_pid: int


def app_session() -> psycopg.Connection:
    """A session of the test database acting as the application role, as the web and workers' sessions do."""
    return psycopg.connect(url_of_test_database(), options=f"-c role=workflow_app -c lock_timeout={WAIT_LIMIT}")


@contextmanager
def lock_wait() -> Iterator[LockWait]:
    """Yields once the waiter waits for the blocker's row lock; both transactions are rolled back on the way out."""
    blocker, waiter, observer = app_session(), app_session(), app_session()
    observer.autocommit = True
    outcome: dict = {}

    def wait():
        try:
            waiter.execute(WAITER_SQL)
        except psycopg.Error as error:  # pragma: no cover - reported by the assertion below
            outcome["error"] = error
        finally:
            waiter.rollback()

    thread = threading.Thread(target=wait, daemon=True)
    try:
        blocker.execute(BLOCKER_SQL)
        waiter_pid = waiter.info.backend_pid
        thread.start()
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while (
            blocker.info.backend_pid not in observer.execute("SELECT pg_blocking_pids(%s)", [waiter_pid]).fetchone()[0]
        ):
            assert time.monotonic() < deadline and "error" not in outcome, outcome or "the waiter never waited"
            time.sleep(0.05)
        yield LockWait(blocker_pid=blocker.info.backend_pid, waiter_pid=waiter_pid)
    finally:
        blocker.rollback()
        if thread.is_alive():
            thread.join(SETTLE_TIMEOUT_SECONDS)
        for session in (blocker, waiter, observer):
            session.close()
