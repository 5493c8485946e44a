"""Reads that tolerate a few seconds of lag, served by a streaming replica (a hot standby) when one is configured.

A read goes to the replica only where the code says it may: a function marked `@replica_reads` runs its ORM reads
(through ReplicaRouter) and its raw SQL (on `read_connection()`) there, in one read-only transaction. Marked now:

- the supervisor dashboard (tasks/console/dashboard.py: supervisor_dashboard);
- the queue figures of GET /api/queues/ (tasks/selectors.py: queue_dashboard);
- the task and case lists: GET /api/workflow/tasks/, GET /api/cases/ and the page /inbox/queues/;
- the figures of /metrics (tasks/console/metrics.py: workflow_figures).

Everything else, writes and the reads that decide them, stays on the primary; so does a marked read when
- no replica is configured (DATABASE_REPLICA_URL unset), or it is down, or it is not a standby (a promoted one
  follows nobody), or it lags more than DATABASE_REPLICA_MAX_LAG_SECONDS;
- the request writes: a POST, PUT, PATCH or DELETE, or a GET in which a service wrote for a user
  (`writes_noted`, which entitlements.row_scope.acting_for_user calls); outside a request (a job), the read is
  inside a transaction on the primary;
- the user (or the account acting for them) wrote, in an earlier request or a job, something the replica has not
  replayed yet (read your writes): after each such write the primary's WAL position is kept in the cache for the
  user, and the replica serves that user again once it has replayed past it. Several web processes (and the
  workers) must share the cache (REDIS_URL) for that to hold across them;
- the replica fails during the read: the read runs again on the primary, and the replica is left alone until
  the next check. The user sees no error.

The lag is checked at most every DATABASE_REPLICA_CHECK_SECONDS per process (a replica that did not answer, every
DOWN_RECHECK_SECONDS), not per read: the primary's WAL position, then on the replica how far it has replayed. A
replica that has replayed everything the primary had written is 0 s behind, however long ago that was (an idle
primary commits nothing); one that has not is as far behind as the time since the last transaction it replayed
committed, an upper bound. /metrics exports the answer (ReplicaCollector).

The replica's sessions are the application's (same role, DATABASE_SET_ROLE included), and entitlements/row_scope.py
sends the row scope there as on the primary, so row-level security filters a list the same on both.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections, transaction
from prometheus_client.core import GaugeMetricFamily

from .database import connection_failure_reason

logger = logging.getLogger(__name__)

REPLICA = "replica"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# A replica that did not answer is asked again after this long (or DATABASE_REPLICA_CHECK_SECONDS, if longer), so
# that an unreachable one does not cost every request a connection attempt.
DOWN_RECHECK_SECONDS = 5.0
# How long a user's write position is kept beyond the longest the replica may lag: by then a replica within the
# lag bound has replayed it.
WRITE_MARKER_MARGIN_SECONDS = 60
WRITE_MARKER_KEY = "replica-read-your-writes:{user_id}"
# A write whose WAL position could not be read: the primary serves its user until the marker expires.
POSITION_UNKNOWN = 2**64

WAL_POSITION_SQL = "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
REPLAY_SQL = """
SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())
"""


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


# --- how far behind --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaState:
    """What the last check of the replica found."""

    up: bool  # a server answered
    lag_seconds: float | None  # None: unknown
    replayed_position: int | None  # the WAL position it has replayed up to (bytes)
    problem: str  # why lag-tolerant reads do not go to it now; "" when they do
    checked_at: float  # time.monotonic()

    @property
    def serves_reads(self) -> bool:
        return not self.problem


def replica_lag(*, primary_position: int, replayed_position: int | None, since_last_replay: float | None):
    """Seconds the replica is behind the primary, or None when that is unknown.

    0 when it has replayed everything the primary had written when asked; else the time since the transaction it
    replayed last committed on the primary, which bounds how old its data is (it has every commit before that one).
    """
    if replayed_position is None:
        return None
    if replayed_position >= primary_position:
        return 0.0
    if since_last_replay is None:
        return None  # it has replayed no transaction since it started
    return max(0.0, float(since_last_replay))


def replica_problem(*, in_recovery: bool, lag_seconds: float | None, max_lag_seconds: float) -> str:
    """Why a replica in this state must not serve lag-tolerant reads ("" when it may)."""
    if not in_recovery:
        return "not a standby: pg_is_in_recovery() is false"
    if lag_seconds is None:
        return "lag unknown: it has replayed no transaction since it started"
    if lag_seconds > max_lag_seconds:
        return f"{lag_seconds:.1f} s behind, more than DATABASE_REPLICA_MAX_LAG_SECONDS ({max_lag_seconds:g})"
    return ""


_state: ReplicaState | None = None
_checking = threading.Lock()


def _stale(state: ReplicaState) -> bool:
    interval = settings.DATABASE_REPLICA_CHECK_SECONDS
    if not state.up:
        interval = max(interval, DOWN_RECHECK_SECONDS)
    return time.monotonic() - state.checked_at >= interval


def _primary_position() -> int:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(WAL_POSITION_SQL)
        return int(cursor.fetchone()[0])


def _replay_progress() -> tuple:
    """On the replica: whether it is a standby, how far it has replayed, and how long ago the last transaction it
    replayed committed. On its own cursor, past the row scope's execute wrapper (these functions read no table),
    outside any transaction (a marked read's transaction opens after the check)."""
    replica = connections[REPLICA]
    if replica.connection is not None:
        try:
            return _ask_replay_progress(replica)
        except DatabaseError:
            replica.close()  # a persistent connection the replica dropped (it restarted): one new try
    replica.ensure_connection()
    return _ask_replay_progress(replica)


def _ask_replay_progress(replica) -> tuple:
    with replica.wrap_database_errors, replica.connection.cursor() as cursor:
        cursor.execute(REPLAY_SQL)
        return cursor.fetchone()


def _check() -> tuple[ReplicaState, bool]:
    """Ask the primary, then the replica; the state and whether to remember it (not when the primary failed)."""
    checked_at = time.monotonic()
    try:
        primary_position = _primary_position()
    except DatabaseError as error:
        problem = f"the primary's WAL position is unknown: {connection_failure_reason(error)}"
        return ReplicaState(False, None, None, problem, checked_at), False
    try:
        in_recovery, replayed, since_last_replay = _replay_progress()
    except DatabaseError as error:
        return ReplicaState(False, None, None, f"down: {connection_failure_reason(error)}", checked_at), True
    replayed_position = int(replayed) if replayed is not None else None
    lag = replica_lag(
        primary_position=primary_position, replayed_position=replayed_position, since_last_replay=since_last_replay
    )
    problem = replica_problem(
        in_recovery=in_recovery, lag_seconds=lag, max_lag_seconds=settings.DATABASE_REPLICA_MAX_LAG_SECONDS
    )
    return ReplicaState(True, lag, replayed_position, problem, checked_at), True


def replica_state() -> ReplicaState:
    """The replica as this process last checked it, checked again once that is DATABASE_REPLICA_CHECK_SECONDS old.
    One thread checks; the others use the last answer meanwhile."""
    global _state
    state = _state
    if state is not None and not _stale(state):
        return state
    if not _checking.acquire(blocking=state is None):
        return state
    try:
        if _state is not None and not _stale(_state):
            return _state
        state, keep = _check()
        if keep:
            _state = state
        return state
    finally:
        _checking.release()


def replica_failed(error: BaseException) -> None:
    """A read on the replica failed: lag-tolerant reads go to the primary until the next check."""
    global _state
    problem = f"failed during a read: {connection_failure_reason(error)}"
    logger.warning("Read replica %s; reading from the primary", problem)
    _state = ReplicaState(False, None, None, problem, time.monotonic())


def replica_state_forget() -> None:
    """Check again at the next lag-tolerant read (tests)."""
    global _state
    _state = None


# --- read your writes ------------------------------------------------------------------------------------------


@dataclass
class _Serving:
    """The request being served: whether it writes, and for whom."""

    request: object
    wrote: bool
    writer_ids: set[int] = field(default_factory=set)


_serving: ContextVar[_Serving | None] = ContextVar("replica_serving", default=None)


def _request_writer_ids(request) -> set[int]:
    """The user a request acts for and the account acting for them (X-On-Behalf-Of), if any."""
    ids = set()
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        ids.add(user.pk)
    account = getattr(request, "via_account", None)
    if account is not None:
        ids.add(account.pk)
    return ids


def _marker_timeout() -> float:
    return (
        settings.DATABASE_REPLICA_MAX_LAG_SECONDS
        + settings.DATABASE_REPLICA_CHECK_SECONDS
        + WRITE_MARKER_MARGIN_SECONDS
    )


def _writes_remember(user_ids: Iterable[int]) -> None:
    """After a commit: the users' lag-tolerant reads stay on the primary until the replica has replayed it."""
    keys = [WRITE_MARKER_KEY.format(user_id=user_id) for user_id in user_ids]
    if not keys:
        return
    try:
        position = _primary_position()
    except DatabaseError:
        position = POSITION_UNKNOWN
    try:
        cache.set_many(dict.fromkeys(keys, position), timeout=_marker_timeout())
    except Exception:  # the cache is down: nothing to keep the position in; the write itself stands
        logger.warning("Could not keep the write position of users %s for read-your-writes", sorted(user_ids))


def _writes_replayed(user_ids: Iterable[int], state: ReplicaState) -> bool:
    """Whether the replica has replayed every write the cache remembers for these users."""
    keys = [WRITE_MARKER_KEY.format(user_id=user_id) for user_id in user_ids]
    if not keys:
        return True
    try:
        positions = cache.get_many(keys).values()
    except Exception:  # without the cache nobody knows what they wrote: the primary answers
        logger.warning("Could not read the write positions for read-your-writes; reading from the primary")
        return False
    return all(state.replayed_position is not None and position <= state.replayed_position for position in positions)


def writes_noted(*, user_ids: Iterable[int | None]) -> None:
    """A service wrote for these users: in a request, its later lag-tolerant reads go to the primary, and the users'
    next ones until the replica has replayed the write; elsewhere (a job), the latter once the write commits."""
    if not replica_configured():
        return
    ids = {user_id for user_id in user_ids if user_id is not None}
    served = _serving.get()
    if served is not None:
        served.wrote = True
        served.writer_ids |= ids
        return
    if ids:
        transaction.on_commit(functools.partial(_writes_remember, ids), using=DEFAULT_DB_ALIAS)


class ReadYourWritesMiddleware:
    """Keeps a request that writes, and its user's next reads, on the primary (see the module's docstring).

    Outside RowScopeMiddleware: the request's transaction has committed when the write position is read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_configured():
            return self.get_response(request)
        served = _Serving(request=request, wrote=request.method not in SAFE_METHODS)
        token = _serving.set(served)
        try:
            response = self.get_response(request)
        finally:
            _serving.reset(token)
        if served.wrote:
            _writes_remember(_request_writer_ids(request) | served.writer_ids)
        return response


# --- routing ---------------------------------------------------------------------------------------------------


@dataclass
class _Reading:
    """A marked read running on the replica; `wrote` once it wrote to the primary (its reads then follow)."""

    wrote: bool = False


_reading: ContextVar[_Reading | None] = ContextVar("replica_reading", default=None)


def _replica_chosen() -> bool:
    """Whether a marked read starting now goes to the replica."""
    if not replica_configured():
        return False
    served = _serving.get()
    if served is not None and served.wrote:
        return False
    if served is None and connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return False  # a job's transaction on the primary may hold writes of its own that no replica has
    state = replica_state()
    if not state.serves_reads:
        return False
    return served is None or _writes_replayed(_request_writer_ids(served.request), state)


def reading_from_replica() -> bool:
    reading = _reading.get()
    return reading is not None and not reading.wrote


def read_connection():
    """The connection for a marked read's raw SQL: the replica's inside a `@replica_reads` function reading there."""
    return connections[REPLICA if reading_from_replica() else DEFAULT_DB_ALIAS]


P = ParamSpec("P")
R = TypeVar("R")


def replica_reads(function: Callable[P, R]) -> Callable[P, R]:
    """Mark a function whose reads tolerate lag: they go to the replica when it may serve them (module docstring).

    Only what the function reads before it returns: a queryset it returns unevaluated is read on the primary. The
    function must not write; if it does, its later reads follow the write to the primary, and a failure is not
    retried. A replica that fails during the function makes it run again on the primary."""

    @functools.wraps(function)
    def read(*args: P.args, **kwargs: P.kwargs) -> R:
        if _reading.get() is not None or not _replica_chosen():
            return function(*args, **kwargs)
        reading = _Reading()
        token = _reading.set(reading)
        replica = connections[REPLICA]
        try:
            with transaction.atomic(using=REPLICA):
                return function(*args, **kwargs)
        except (OperationalError, InterfaceError) as error:
            if reading.wrote or not replica.errors_occurred:
                raise  # the primary's error, or one after a write: not the replica's to take back
            replica_failed(error)
        finally:
            _reading.reset(token)
        return function(*args, **kwargs)

    return read


class ReplicaRouter:
    """Reads inside a `@replica_reads` function go to the replica (when it was chosen); everything else, and every
    write, to the primary."""

    def db_for_read(self, model, **hints):
        return REPLICA if reading_from_replica() else DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        reading = _reading.get()
        if reading is not None:
            reading.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


# --- metrics ---------------------------------------------------------------------------------------------------


class ReplicaCollector:
    """/metrics: the replica as this process last checked it (nothing when no replica is configured)."""

    def collect(self):
        if not replica_configured():
            return
        state = replica_state()
        yield GaugeMetricFamily(
            "workflow_replica_up", "1 when the read replica answered its last check.", value=state.up
        )
        yield GaugeMetricFamily(
            "workflow_replica_reads",
            "1 when lag-tolerant reads go to the read replica, 0 when the primary serves them.",
            value=state.serves_reads,
        )
        yield GaugeMetricFamily(
            "workflow_replica_max_lag_seconds",
            "DATABASE_REPLICA_MAX_LAG_SECONDS: past it the primary serves lag-tolerant reads.",
            value=settings.DATABASE_REPLICA_MAX_LAG_SECONDS,
        )
        if state.lag_seconds is not None:
            yield GaugeMetricFamily(
                "workflow_replica_lag_seconds",
                "How far the read replica is behind the primary (0 when it has replayed all the primary wrote).",
                value=state.lag_seconds,
            )
