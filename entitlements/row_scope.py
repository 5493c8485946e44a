"""The row scope: which rows of tasks, history, instances, cases, events and mappings a transaction may reach.

Row-level security (docs/row-level-security.md) stands behind access.py: PostgreSQL's policies on those tables read
transaction-local settings, which entitlements.row_scope_set writes from a user id (it looks up the queues the user
may view and supervise by the one access rule, remembered in entitlements.work_access_cache). Which scope code runs
in is decided here and kept in a ContextVar:

- a request: one transaction (RowScopeMiddleware), in the scope of the user it authenticated (act-as included: DRF's
  authentication calls request_row_scope_set);
- a service that acts for a user (`@acting_for_user`): that user's;
- beat jobs, management commands, the engine's own steps and the other places docs/row-level-security.md lists:
  `system_scope()`, every row;
- anything else: no row (a query that forgets its access filter finds nothing).

The scope reaches PostgreSQL lazily: an execute wrapper on the default connection and the read replica's
(apply_row_scope, installed on each new connection to a migrated database; core/replica.py) sends
`SELECT entitlements.row_scope_set(...)` before the first statement of each transaction and again when the scope
changes inside one: one round trip a transaction. A statement outside a transaction has no transaction to carry
settings: in a request it opens the request's transaction; else, with a scope, it runs in a transaction of its own
(BEGIN, the scope, the statement, COMMIT); with none, as it is.

Row-level security is defence in depth against the application's own mistakes, not a boundary against code that
runs in it: that code could call set_config itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from django.db import DEFAULT_DB_ALIAS, transaction
from psycopg.pq import TransactionStatus

from core.replica import REPLICA, writes_noted

from .access import console_shows_every_row


@dataclass(frozen=True)
class RowScope:
    """A user (their queues' rows, or every row to read when `kind` is SUPERUSER), the system (every row), or no row."""

    user_id: int | None = None
    kind: str = ""


SYSTEM_KIND = "system"
SUPERUSER_KIND = "superuser"
NO_ROWS = RowScope()
SYSTEM = RowScope(kind=SYSTEM_KIND)

ROW_SCOPE_SET_SQL = "SELECT entitlements.row_scope_set(%s, %s)"


def user_row_scope(user) -> RowScope:
    """The scope of an active user; an active superuser also reads every row (access.console_shows_every_row)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_ROWS
    return RowScope(user_id=user.pk, kind=SUPERUSER_KIND if console_shows_every_row(user=user) else "")


class _Entry:
    """One entry into a scope. Entering the scope again (a new request) is a new entry, so the settings are sent
    again: the user's queues are read afresh. A self-scoped entry is a statement that sets its own scope."""

    __slots__ = ("scope", "self_scoped")

    def __init__(self, scope: RowScope, *, self_scoped: bool = False):
        self.scope = scope
        self.self_scoped = self_scoped


_entry: ContextVar[_Entry | None] = ContextVar("row_scope", default=None)
# Where no code entered a scope. NO_ROWS in the application; the test suite makes it SYSTEM (tests/conftest.py).
_outside = _Entry(NO_ROWS)


def _current() -> _Entry:
    return _entry.get() or _outside


def current_row_scope() -> RowScope:
    return _current().scope


def row_scope_default_set(scope: RowScope) -> None:
    """The scope of code that entered none, in every thread (the test suite's setup code runs as the system)."""
    global _outside
    _outside = _Entry(scope)


@contextmanager
def row_scope(scope: RowScope, *, fresh: bool = False) -> Iterator[None]:
    """Run the block in `scope`. Entering the scope one is already in changes nothing, unless `fresh`."""
    if not fresh and _current().scope == scope:
        yield
        return
    token = _entry.set(_Entry(scope))
    try:
        yield
    finally:
        _entry.reset(token)


def system_scope() -> AbstractContextManager[None]:
    """Every row, to read and write: for work the system does, after the Python layer checked whoever asked for it."""
    return row_scope(SYSTEM)


@contextmanager
def acting_as(user) -> Iterator[None]:
    """Run the block in `user`'s scope; with no user (a system step), in the caller's."""
    if user is None:
        yield
        return
    with row_scope(user_row_scope(user)):
        yield


P = ParamSpec("P")
R = TypeVar("R")


def acting_for_user(service: Callable[P, R]) -> Callable[P, R]:
    """Run a service in the scope of its `user` keyword argument (the user it acts for), wherever it is called
    from: a request (the same scope: nothing is sent again), a test, the shell. The service writes for that user
    (and the account acting for them): their reads that tolerate lag read it back from the primary
    (core/replica.py: read your writes)."""

    @functools.wraps(service)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        user = kwargs.get("user")
        with acting_as(user):
            result = service(*args, **kwargs)
        account = kwargs.get("via_account")
        writes_noted(user_ids=(getattr(user, "pk", None), getattr(account, "pk", None)))
        return result

    return run


@contextmanager
def self_scoped_statement(user) -> Iterator[None]:
    """Run a statement that scopes itself to `user` (flowable.claim_next_for_user: in a transaction acting for
    nobody it acts for its claimant, for the call only). Nothing is sent for it, and no request transaction is
    opened, unless the transaction already acts for someone else: then the user's scope is sent first. So
    claim-next outside a transaction stays one statement, one round trip."""
    token = _entry.set(_Entry(user_row_scope(user), self_scoped=True))
    try:
        yield
    finally:
        _entry.reset(token)


def exists_in_any_scope(queryset) -> bool:
    """Whether the query finds a row past the row scope. Only for telling a refused look at an existing object (to
    audit) from a look at nothing, after the access check said no: the answer is never shown."""
    with system_scope():
        return queryset.exists()


# --- requests ----------------------------------------------------------------------------------------------------


class RowScopeMiddleware:
    """Each request is one transaction, view and response rendering included, in the scope of its user.

    The transaction begins with the request's first statement that needs the row scope (apply_row_scope opens it):
    reading the session, the user or the API token runs as before, a request that reads nothing (a health probe, a
    login form) neither connects nor waits for a database that is down, and claim-next (a statement that scopes
    itself) stays one round trip. Its scope is no row until authentication has run, then the user's (process_view for a session; DRF calls request_row_scope_set
    after its own authentication). A response of 500 or more rolls it back, as Django's ATOMIC_REQUESTS would on
    the exception behind it. Code that opens its own transaction first (transaction.atomic in a view) keeps it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        served = _Request()
        tokens = (_request.set(served), _entry.set(_Entry(NO_ROWS)))
        try:
            try:
                response = self.get_response(request)
            except BaseException as error:
                served.end(error=error)
                raise
            served.end(rollback=response.status_code >= 500)
            return response
        finally:
            _entry.reset(tokens[1])
            _request.reset(tokens[0])

    def process_view(self, request, view_func, view_args, view_kwargs):
        request_row_scope_set(getattr(request, "user", None))


class _Request:
    """The transaction of the request being served, once its first statement has opened it."""

    __slots__ = ("atomic", "ended")

    def __init__(self):
        self.atomic = None
        self.ended = False

    def begin_on(self, connection) -> None:
        """Open the request's transaction if this statement is its first outside any transaction."""
        if self.atomic is None and not self.ended and connection.get_autocommit():
            self.atomic = transaction.atomic(using=connection.alias)
            self.atomic.__enter__()

    def end(self, *, rollback: bool = False, error: BaseException | None = None) -> None:
        self.ended = True  # what runs after the commit (on_commit callbacks) opens no transaction of the request
        atomic, self.atomic = self.atomic, None
        if atomic is None:
            return
        if rollback:
            transaction.set_rollback(True, using=atomic.using)
        if error is None:
            atomic.__exit__(None, None, None)
        else:
            atomic.__exit__(type(error), error, error.__traceback__)


_request: ContextVar[_Request | None] = ContextVar("row_scope_request", default=None)


def request_row_scope_set(user) -> None:
    """The request being served acts for `user` from now on (after authentication, act-as). Outside a request
    served through RowScopeMiddleware it does nothing: a scope set here would outlive its caller."""
    if _request.get() is None:
        return
    scope = user_row_scope(user)
    if _current().scope != scope:
        _entry.set(_Entry(scope))  # RowScopeMiddleware restores the scope from before the request


# --- sending the scope to PostgreSQL -----------------------------------------------------------------------------

_FRESH = object()  # a transaction with nothing set yet: no row
_UNKNOWN = object()  # after ROLLBACK TO SAVEPOINT: whatever was set before the savepoint
_SAVEPOINT_STATEMENTS = ("SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")


def _send(connection, scope: RowScope) -> None:
    # On a cursor of its own, past Django's: not logged or counted as one of the caller's queries, and it leaves
    # the caller's cursor (which may be a server-side one) alone.
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        cursor.execute(ROW_SCOPE_SET_SQL, [scope.user_id, scope.kind])


def apply_row_scope(execute, sql, params, many, context):
    """Execute wrapper: before a statement, make the transaction's settings those of the current scope."""
    connection = context["connection"]
    wanted = _current()
    needs_scope = wanted.scope != NO_ROWS and not wanted.self_scoped
    served = _request.get()
    if served is not None and needs_scope and connection.alias == DEFAULT_DB_ALIAS:
        # The request's first statement that needs its scope opens its transaction. Not a read on the replica:
        # core/replica.py runs it in a read-only transaction of its own there.
        served.begin_on(connection)
    if connection.get_autocommit():
        if not needs_scope:
            return execute(sql, params, many, context)
        with transaction.atomic(using=connection.alias):
            _send(connection, wanted.scope)
            connection.row_scope_sent = wanted
            return execute(sql, params, many, context)
    status = connection.connection.info.transaction_status
    if status == TransactionStatus.IDLE:
        connection.row_scope_sent = _FRESH  # the statement begins a transaction
    savepoint_statement = isinstance(sql, str) and sql.startswith(_SAVEPOINT_STATEMENTS)
    if savepoint_statement or status == TransactionStatus.INERROR:
        try:
            return execute(sql, params, many, context)
        finally:
            if savepoint_statement and sql.startswith("ROLLBACK TO SAVEPOINT "):
                connection.row_scope_sent = _UNKNOWN  # a scope sent inside the savepoint was undone with it
    sent = getattr(connection, "row_scope_sent", _UNKNOWN)
    if wanted.self_scoped and (sent is _FRESH or (sent is not _UNKNOWN and sent.scope in (wanted.scope, SYSTEM))):
        return execute(sql, params, many, context)  # the statement scopes itself, or the transaction's scope fits
    if sent is not wanted and not (sent is _FRESH and wanted.scope == NO_ROWS):
        _send(connection, wanted.scope)
        connection.row_scope_sent = wanted
    return execute(sql, params, many, context)


_HOLDS_ROW_SCOPE_SQL = "SELECT to_regprocedure('entitlements.row_scope_set(bigint, text)') IS NOT NULL"
_databases_with_row_scope: set[tuple] = set()


def _holds_row_scope(connection) -> bool:
    """Whether the connected database has the row scope (is migrated): asked once per process and database."""
    key = tuple(connection.settings_dict.get(name) for name in ("HOST", "PORT", "NAME"))
    if key not in _databases_with_row_scope:
        with connection.wrap_database_errors, connection.connection.cursor() as cursor:
            cursor.execute(_HOLDS_ROW_SCOPE_SQL)
            if not cursor.fetchone()[0]:
                return False
        _databases_with_row_scope.add(key)
    return True


def install_row_scope(sender, connection, **kwargs) -> None:
    """connection_created receiver: every statement of the default database and of the read replica goes through
    apply_row_scope, once the database has the row scope (not before its migrations, nor on another server a
    connection is pointed at). First in the list, so a wrapper that a caller adds and removes around a block cannot
    remove it."""
    if connection.alias not in (DEFAULT_DB_ALIAS, REPLICA):
        return
    installed = apply_row_scope in connection.execute_wrappers
    if _holds_row_scope(connection):
        if not installed:
            connection.execute_wrappers.insert(0, apply_row_scope)
    elif installed:
        connection.execute_wrappers.remove(apply_row_scope)
