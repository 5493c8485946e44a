"""Wake-ups for long-polling fetch-and-lock: one LISTEN connection per process, shared by every waiting thread.

PostgreSQL's NOTIFY on channel external_tasks (trigger external_tasks_notify, sent at commit) bumps a generation
counter; a waiter notes the generation before it looks for items and sleeps until it changes. So an item committed
between the look and the sleep still wakes it. The listening connection is psycopg's own (Django's connections
are per thread and inside request transactions); it needs a direct connection to PostgreSQL, not PgBouncer in
transaction mode, which cannot carry LISTEN. Considered: django-pgpubsub and procrastinate's listener, which bring
their own task models; the piece needed here is a condition variable around psycopg's notifies().
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from django.conf import settings
from django.db import connection

CHANNEL = "external_tasks"
RECONNECT_SECONDS = 1.0
# How often the listening thread looks up from its connection to see whether it was asked to stop.
STOP_CHECK_SECONDS = 1.0
logger = logging.getLogger(__name__)


class ExternalTaskWakeups:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._listening = threading.Event()
        self._started = False
        self._start_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def generation(self) -> int:
        """The current generation; starts listening (and waits until it does) on first use."""
        self._ensure_listening()
        with self._condition:
            return self._generation

    def wait(self, since: int | None, *, timeout: float) -> None:
        """Sleep until a notification newer than generation `since` arrives, or `timeout` seconds pass."""
        with self._condition:
            self._condition.wait_for(lambda: since is None or self._generation != since, timeout=timeout)

    def _bump(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def _ensure_listening(self) -> None:
        if not self._started:
            with self._start_lock:
                if not self._started:
                    params = _connection_params()
                    if params is None:  # behind PgBouncer without a direct address: waiters recheck on a timer
                        logger.warning(
                            "external task wake-ups off: DATABASE_PGBOUNCER is set and DATABASE_LISTEN_URL is not "
                            "(long polls answer within their recheck interval instead)"
                        )
                        self._started = True
                        self._listening.set()
                        return
                    self._stopping.clear()
                    self._listening.clear()
                    self._thread = threading.Thread(
                        target=self._listen, args=(params,), name="external-task-wakeups", daemon=True
                    )
                    self._thread.start()
                    self._started = True
        self._listening.wait(timeout=10)

    def stop(self) -> None:
        """Stop listening and close the connection (a test database cannot be dropped while it is open)."""
        with self._start_lock:
            if self._thread is not None:
                self._stopping.set()
                self._thread.join(timeout=STOP_CHECK_SECONDS * 5)
            self._thread = None
            self._started = False

    def _listen(self, params: dict) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**params, autocommit=True) as listener:
                    listener.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self._bump()  # anything sent while not listening: everyone looks again
                    while not self._stopping.is_set():
                        for _ in listener.notifies(timeout=STOP_CHECK_SECONDS):
                            self._bump()
            except Exception:  # a lost connection: waiters fall back to their recheck interval meanwhile
                logger.exception("external task wake-ups: listening connection lost; reconnecting")
                time.sleep(RECONNECT_SECONDS)


def _connection_params() -> dict | None:
    """Where to LISTEN: DATABASE_LISTEN_URL when set (a direct address of the primary); else the application's own
    database address, unless that leads to PgBouncer in transaction mode, which cannot carry a LISTEN (None)."""
    if settings.DATABASE_LISTEN_URL:
        return {"conninfo": settings.DATABASE_LISTEN_URL}
    if settings.DATABASE_PGBOUNCER:
        return None
    params = connection.get_connection_params()
    return {
        key: value for key, value in params.items() if key not in ("cursor_factory", "context", "prepare_threshold")
    }


WAKEUPS = ExternalTaskWakeups()
