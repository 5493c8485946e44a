"""Reads behind the database health page of the supervisor console and the database gauges of /metrics.

Where each figure comes from:

- sessions, their statements, who blocks whom and since when a session waits for a lock: flowable.database_activity()
  (pg_stat_activity, pg_locks and pg_blocking_pids of this database's client sessions). It runs with the owner's
  pg_read_all_stats (core/db_roles.py), so the application role sees every login's statement through it;
- slow statements: those running now for longer than DB_SLOW_QUERY_MS (from the sessions above, always), and the
  statements pg_stat_statements recorded over the threshold when the extension is installed in this database and
  loaded (shared_preload_libraries). Without it the page says how to enable it;
- table and index sizes, unused indexes, dead tuples and (auto)vacuum/analyze times: pg_class, pg_index,
  pg_stat_user_tables and pg_stat_user_indexes over our schemas (core.db_roles.SCHEMAS);
- deadlocks: pg_stat_database of this database (counted since its statistics were last reset);
- connections: this database's sessions by state, every database's (pg_stat_database.numbackends) against
  max_connections;
- replication: flowable.database_replication() (pg_stat_replication): each standby's lag. None on a server without
  standbys.

Everything is read on the primary (a replica's pg_stat_activity is the replica's), in one transaction whose
statements PostgreSQL cancels past HEALTH_STATEMENT_TIMEOUT_MS: a page of the console or a scrape must not hang on
a server in trouble, which is when they are read. Ages count from each statement's start (statement_timestamp()),
not its transaction's, so that a caller's longer transaction does not make them look younger.

django-pgactivity and django-pglock were considered: they wrap pg_stat_activity and the relation locks of pg_locks
as Django models read through a connection alias, so they would need a second login holding pg_read_all_stats (the
application role sees only its own login's statements), they miss row-lock waits (a transaction id, not a relation)
and cover none of the statements, sizes, indexes, vacuum, deadlock or replication figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from core.db_roles import SCHEMAS

# A page load or a scrape gives up on a statement after this long (the server is then the trouble itself).
HEALTH_STATEMENT_TIMEOUT_MS = 5_000
# Rows per section: the page is for reading, not a dump.
SECTION_ROWS = 25
STATEMENTS_EXTENSION = "pg_stat_statements"

BLOCKING_SQL = """
WITH a AS (SELECT * FROM flowable.database_activity() WHERE pid <> pg_backend_pid())
SELECT w.pid, w.role_name, w.application_name, w.query, w.wait_event_type, w.wait_event,
       EXTRACT(EPOCH FROM statement_timestamp() - coalesce(w.lock_wait_start, w.query_start)),
       b.pid, b.role_name, b.application_name, b.query, b.state,
       EXTRACT(EPOCH FROM statement_timestamp() - b.xact_start), EXTRACT(EPOCH FROM statement_timestamp() - b.query_start),
       coalesce(cardinality(b.blocking_pids), 0) > 0
  FROM a w
 CROSS JOIN LATERAL unnest(w.blocking_pids) AS blocker(pid)
  LEFT JOIN a b ON b.pid = blocker.pid
 ORDER BY 7 DESC NULLS LAST, w.pid, blocker.pid
 LIMIT %(rows)s
"""

RUNNING_SLOW_SQL = """
SELECT pid, role_name, application_name, state, EXTRACT(EPOCH FROM statement_timestamp() - query_start), wait_event_type,
       wait_event, query
  FROM flowable.database_activity()
 WHERE pid <> pg_backend_pid() AND state = 'active' AND query_start < statement_timestamp() - %(threshold_ms)s * interval '1 ms'
 ORDER BY query_start
 LIMIT %(rows)s
"""

STATEMENTS_SCHEMA_SQL = """
SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = %(name)s
"""

# pg_stat_statements' columns as of PostgreSQL 13 (the *_exec_time ones).
RECORDED_SLOW_SQL = """
SELECT r.rolname, s.calls, s.mean_exec_time, s.max_exec_time, s.total_exec_time, s.rows, s.query
  FROM {schema}.pg_stat_statements s
  LEFT JOIN pg_roles r ON r.oid = s.userid
 WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND s.max_exec_time >= %(threshold_ms)s
 ORDER BY s.mean_exec_time DESC
 LIMIT %(rows)s
"""

TABLE_SIZES_SQL = """
SELECT n.nspname, c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid), pg_total_relation_size(c.oid),
       greatest(c.reltuples, 0)::bigint
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'm')
 ORDER BY pg_total_relation_size(c.oid) DESC, 1, 2
 LIMIT %(rows)s
"""

# Never scanned since the statistics were reset, and not there for a constraint (primary key, unique, exclusion),
# which checks writes however seldom anything reads by it.
UNUSED_INDEXES_SQL = """
SELECT s.schemaname, s.relname, s.indexrelname, pg_relation_size(s.indexrelid), pg_get_indexdef(s.indexrelid)
  FROM pg_stat_user_indexes s
  JOIN pg_index i ON i.indexrelid = s.indexrelid
 WHERE s.schemaname = ANY(%(schemas)s) AND s.idx_scan = 0
   AND NOT i.indisprimary AND NOT i.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid)
 ORDER BY pg_relation_size(s.indexrelid) DESC, 1, 2, 3
 LIMIT %(rows)s
"""

VACUUM_SQL = """
SELECT schemaname, relname, n_live_tup, n_dead_tup, last_vacuum, last_autovacuum, last_analyze, last_autoanalyze,
       autovacuum_count
  FROM pg_stat_user_tables
 WHERE schemaname = ANY(%(schemas)s)
 ORDER BY n_dead_tup DESC, 1, 2
 LIMIT %(rows)s
"""

# The last column: whether flowable.database_activity()'s owner may read other logins' statements (create_database_roles
# grants it pg_read_all_stats; a cluster whose roles were made before that shows them as "<insufficient privilege>").
DATABASE_SQL = """
SELECT d.deadlocks, d.stats_reset, (SELECT sum(numbackends) FROM pg_stat_database),
       current_setting('max_connections')::int,
       (SELECT pg_has_role(p.proowner, 'pg_read_all_stats', 'USAGE') FROM pg_proc p
         WHERE p.oid = 'flowable.database_activity()'::regprocedure)
  FROM pg_stat_database d
 WHERE d.datname = current_database()
"""

CONNECTIONS_SQL = """
SELECT coalesce(state, 'unknown'), count(*) FROM flowable.database_activity() GROUP BY 1 ORDER BY 2 DESC, 1
"""

REPLICATION_SQL = """
SELECT application_name, client_addr, state, sync_state, write_lag_seconds, flush_lag_seconds, replay_lag_seconds,
       replay_behind_bytes
  FROM flowable.database_replication()
 ORDER BY application_name, client_addr
"""

# /metrics: everything but the dead tuples in one statement. The scrape's own session counts among the
# connections, not among the slow statements.
GAUGES_SQL = """
WITH a AS (SELECT *, pid = pg_backend_pid() AS scrape FROM flowable.database_activity())
SELECT (SELECT count(*) FROM a WHERE cardinality(blocking_pids) > 0),
       (SELECT coalesce(max(EXTRACT(EPOCH FROM statement_timestamp() - lock_wait_start)), 0) FROM a),
       (SELECT count(*) FROM a WHERE NOT scrape AND state = 'active'
                                 AND query_start < statement_timestamp() - %(threshold_ms)s * interval '1 ms'),
       (SELECT coalesce(json_object_agg(state, n), '{}'::json)
          FROM (SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM a GROUP BY 1) AS by_state),
       (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()),
       (SELECT sum(numbackends) FROM pg_stat_database),
       current_setting('max_connections')::int,
       (SELECT coalesce(json_agg(json_build_array(coalesce(application_name, ''), coalesce(client_addr, ''),
                                                  coalesce(replay_lag_seconds, 0))), '[]'::json)
          FROM flowable.database_replication())
"""

DEAD_TUPLES_SQL = """
SELECT schemaname, relname, n_dead_tup FROM pg_stat_user_tables WHERE schemaname = ANY(%(schemas)s) ORDER BY 1, 2
"""


def slow_query_ms() -> int:
    return settings.DB_SLOW_QUERY_MS


@contextmanager
def health_cursor() -> Iterator:
    """A cursor on the primary in a transaction of its own, its statements cancelled past the health timeout."""
    with transaction.atomic(using="default"), connection.cursor() as cursor:
        # Fresh statistics even inside a caller's transaction, which keeps the first ones it read otherwise.
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, true), pg_stat_clear_snapshot()",
            [str(HEALTH_STATEMENT_TIMEOUT_MS)],
        )
        yield cursor


# --- the page ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockedSession:
    waiting_pid: int
    waiting_role: str | None
    waiting_application: str | None
    waiting_query: str | None
    wait_event_type: str | None
    wait_event: str | None
    waited_seconds: float | None
    blocking_pid: int
    blocking_role: str | None
    blocking_application: str | None
    blocking_query: str | None
    blocking_state: str | None
    blocking_transaction_seconds: float | None
    blocking_query_seconds: float | None
    blocker_waits_too: bool


@dataclass(frozen=True)
class RunningStatement:
    pid: int
    role: str | None
    application: str | None
    state: str | None
    running_seconds: float
    wait_event_type: str | None
    wait_event: str | None
    query: str | None


@dataclass(frozen=True)
class RecordedStatement:
    role: str | None
    calls: int
    mean_ms: float
    max_ms: float
    total_ms: float
    rows: int
    query: str


@dataclass(frozen=True)
class TableSize:
    schema: str
    table: str
    table_bytes: int
    index_bytes: int
    total_bytes: int
    estimated_rows: int


@dataclass(frozen=True)
class UnusedIndex:
    schema: str
    table: str
    index: str
    size_bytes: int
    definition: str


@dataclass(frozen=True)
class TableVacuum:
    schema: str
    table: str
    live_tuples: int
    dead_tuples: int
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None
    autovacuum_count: int

    @property
    def dead_percent(self) -> int | None:
        total = self.live_tuples + self.dead_tuples
        return round(100 * self.dead_tuples / total) if total else None


@dataclass(frozen=True)
class Replica:
    application: str | None
    client_addr: str | None
    state: str | None
    sync_state: str | None
    write_lag_seconds: float | None
    flush_lag_seconds: float | None
    replay_lag_seconds: float | None
    replay_behind_bytes: int | None


@dataclass
class DatabaseHealth:
    slow_query_ms: int
    blocked: list[BlockedSession]
    running_slow: list[RunningStatement]
    # None: pg_stat_statements is not available here; `statements_problem` says why.
    recorded_slow: list[RecordedStatement] | None
    statements_problem: str
    tables: list[TableSize]
    unused_indexes: list[UnusedIndex]
    vacuum: list[TableVacuum]
    deadlocks: int
    statistics_reset_at: datetime | None
    connections_by_state: list[tuple[str, int]]
    server_connections: int
    max_connections: int
    replicas: list[Replica] = field(default_factory=list)
    # False: other logins' statements (and the standbys' lag) are hidden from the page.
    reads_every_statement: bool = True

    @property
    def connections_used_percent(self) -> int:
        return round(100 * self.server_connections / self.max_connections) if self.max_connections else 0


def _floats(row, *indexes):
    return [float(row[i]) if i in indexes and row[i] is not None else row[i] for i in range(len(row))]


def recorded_slow_statements(cursor, *, threshold_ms: int) -> tuple[list[RecordedStatement] | None, str]:
    """pg_stat_statements' statements of this database whose slowest run took threshold_ms or more, slowest on
    average first; (None, why) when the extension is not installed here or not loaded by the server."""
    cursor.execute(STATEMENTS_SCHEMA_SQL, {"name": STATEMENTS_EXTENSION})
    row = cursor.fetchone()
    if row is None:
        return None, "not installed in this database"
    query = RECORDED_SLOW_SQL.format(schema=connection.ops.quote_name(row[0]))
    try:
        with transaction.atomic(using="default"):  # a savepoint: the page goes on when the read fails
            cursor.execute(query, {"threshold_ms": threshold_ms, "rows": SECTION_ROWS})
            rows = cursor.fetchall()
    except DatabaseError as error:  # installed but not in shared_preload_libraries
        return None, str(error).strip().splitlines()[0]
    return [RecordedStatement(*_floats(r, 2, 3, 4)) for r in rows], ""


def database_health() -> DatabaseHealth:
    """Every section of the database health page, read in one transaction on the primary."""
    threshold = slow_query_ms()
    schemas = {"schemas": list(SCHEMAS), "rows": SECTION_ROWS}
    with health_cursor() as cursor:
        cursor.execute(BLOCKING_SQL, {"rows": SECTION_ROWS * 2})
        blocked = [BlockedSession(*_floats(r, 6, 12, 13)) for r in cursor.fetchall()]
        cursor.execute(RUNNING_SLOW_SQL, {"threshold_ms": threshold, "rows": SECTION_ROWS})
        running = [RunningStatement(*_floats(r, 4)) for r in cursor.fetchall()]
        recorded, problem = recorded_slow_statements(cursor, threshold_ms=threshold)
        cursor.execute(TABLE_SIZES_SQL, schemas)
        tables = [TableSize(*r) for r in cursor.fetchall()]
        cursor.execute(UNUSED_INDEXES_SQL, schemas)
        unused = [UnusedIndex(*r) for r in cursor.fetchall()]
        cursor.execute(VACUUM_SQL, schemas)
        vacuum = [TableVacuum(*r) for r in cursor.fetchall()]
        cursor.execute(DATABASE_SQL)
        deadlocks, reset_at, server_connections, max_connections, reads_every_statement = cursor.fetchone()
        cursor.execute(CONNECTIONS_SQL)
        by_state = [(state, count) for state, count in cursor.fetchall()]
        cursor.execute(REPLICATION_SQL)
        replicas = [
            Replica(*r[:7], int(r[7]) if r[7] is not None else None) for r in (_floats(x, 4, 5, 6) for x in cursor)
        ]
    return DatabaseHealth(
        slow_query_ms=threshold,
        blocked=blocked,
        running_slow=running,
        recorded_slow=recorded,
        statements_problem=problem,
        tables=tables,
        unused_indexes=unused,
        vacuum=vacuum,
        deadlocks=deadlocks or 0,
        statistics_reset_at=reset_at,
        connections_by_state=by_state,
        server_connections=int(server_connections or 0),
        max_connections=max_connections,
        replicas=replicas,
        reads_every_statement=reads_every_statement,
    )


# --- /metrics ---------------------------------------------------------------------------------------------------


@dataclass
class DatabaseGauges:
    blocked_sessions: int
    longest_lock_wait_seconds: float
    slow_statements: int
    connections_by_state: dict[str, int]
    deadlocks: int
    server_connections: int
    max_connections: int
    # (application_name, client address, replay lag in seconds) per standby; empty without standbys.
    replication_lag: list[tuple[str, str, float]]
    dead_tuples: list[tuple[str, str, int]]


def database_gauges() -> DatabaseGauges:
    """The database figures of a scrape: two statements on the primary."""
    with health_cursor() as cursor:
        cursor.execute(GAUGES_SQL, {"threshold_ms": slow_query_ms()})
        blocked, longest_wait, slow, by_state, deadlocks, server_connections, max_connections, lag = cursor.fetchone()
        cursor.execute(DEAD_TUPLES_SQL, {"schemas": list(SCHEMAS)})
        dead = [(schema, table, count) for schema, table, count in cursor.fetchall()]
    return DatabaseGauges(
        blocked_sessions=blocked,
        longest_lock_wait_seconds=float(longest_wait),
        slow_statements=slow,
        connections_by_state=dict(by_state),
        deadlocks=deadlocks or 0,
        server_connections=int(server_connections or 0),
        max_connections=max_connections,
        replication_lag=[(name, address, float(seconds)) for name, address, seconds in lag],
        dead_tuples=dead,
    )
