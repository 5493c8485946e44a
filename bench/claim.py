"""Claim-next benchmark, four ways in one run; one file past 600 lines so a person can read and run it whole.

Claims per second at 1, 4 and 16 concurrent claimers.

What is measured, against the same backlog of OPEN tasks (reset before every measurement):

  sql       the plain claim statement (one ordered index probe per queue: unnest(queues) CROSS JOIN LATERAL
            (... ORDER BY effective_priority DESC, created_at, task_id LIMIT 1 FOR UPDATE SKIP LOCKED), the best of those,
            then UPDATE it to CLAIMED), sent with psycopg directly. It only flips the task: no history row, no
            queue load. This is the baseline the other figures are divided by.
  ceiling   a prepared UPDATE by primary key of one row of a table as large as the backlog (bench_claim_ceiling:
            the columns a claim sets, the task table's fillfactor, no other index, no trigger), each claimer its own
            keys in a random order (a claim, too, finds its task on any page): what one write of one row costs on
            this machine at that moment, which no claim can beat. Issue 24's target is the claim function's rate
            over this one.
  function  (extra, for attribution) flowable.claim_next_task(...) called with psycopg directly: the claim plus
            queue load plus history row, without Django.
  aging     (issue 27) the function as above, on the same queues with aging on (the aging job's boosts on every
            task, weight 1). Switched on before each of its measurements and off before the others' (the boosts
            written and cleared by the aging job itself, tasks/sla/aging.py), so the other methods measure aging
            off. Target: its rate at least AGING_TARGET_RATIO of the function's in the same round (both ÷ sql).
  express   (issue 27) as aging, plus an express lane on every queue (threshold AGING_EXPRESS_THRESHOLD, share
            AGING_EXPRESS_SHARE %: with the backlog boosted about 30 % of it is express, so the lane is spent most
            of the time and claims take the probes below its threshold, and concurrent claims race for its credit).
  service   tasks.services.task_claim_next(user=...) in-process: Django, access check (queues_for), the function.
  http      POST /api/workflow/tasks/claim/next over HTTP against gunicorn, which this script starts on
            127.0.0.1, authenticated with a real API token. The client is a minimal HTTP/1.1 client (HttpClient)
            that keeps the connection open while the server allows it.

Every claimer is its own OS process with its own database connection (or HTTP connection), for every method, so
no method is held back by one Python interpreter's GIL. The machine's cores are shared by the claimers, the
server (gunicorn) and PostgreSQL: on a 2-core machine the client processes take CPU from what they measure.

Each cell (method × client count) is measured --rounds times. Within a round, at one client count, every method
is measured between two measurements of the plain statement (sql, a, sql, b, sql, c, sql; the order of a, b, c
rotates between rounds), and its ratio is its rate over the geometric mean of the two sql rates beside it. The
table shows the median rate, the median ratio and the spread over the rounds, and p50/p99 over all rounds'
claims. A shared machine's speed drifts within a minute (bench/RESULTS.md): a ratio against a baseline measured
further away measures that drift as much as the code.

With --compare-backlog N a second backlog of N tasks is loaded into its own 20 queues, with its own claimer, in
the same tables, and every measurement is taken on both backlogs one right after the other (which first
alternates by round); the comparison is the median over the rounds of those back-to-back ratios. Both backlogs
are the same claim's work, the claim only probes the head of each of its queues' index ranges: what the
comparison asks is whether a claim costs more when its queues hold ten times as many open tasks.

Each round's rate over the ceiling's is its ratio to sql over the ceiling's ratio to sql (both bracketed as
above), printed beside the sql ratio.

After each measurement it verifies: no task id handed out twice, the number of CLAIMED tasks equals the number
of claims, and (for the methods that keep them) one CLAIMED history row per claimed task and every bench queue's
current_load equal to its CLAIMED count. It exits 1 if any check fails.

Run (from the project root, PostgreSQL reachable; the database is created, migrated and seeded if needed):

    .venv/bin/python bench/claim.py                                   # 1,000,000 tasks, 20 queues, 1/4/16 clients, 5×4 s
    .venv/bin/python bench/claim.py --tasks 50000 --seconds 2 --rounds 1   # smoke run
    .venv/bin/python bench/claim.py --compare-backlog 100000          # also 100k tasks, measured in turn with the 1M

Each measurement stops by itself after --seconds (or when the backlog is drained).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import math
import multiprocessing
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from common import django_setup, ensure_database  # noqa: E402  (bench/ is on sys.path when run)
from psycopg import conninfo, sql

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/workflow_bench"
HTTP_HOST = "127.0.0.1"
CLAIM_NEXT_PATH = "/api/workflow/tasks/claim/next"
BENCH_USER = "bench-claimer"
BENCH_ROLE = "bench-worker"
QUEUE_PREFIX = "bench-"
# --compare-backlog's smaller backlog: its own queues and its own claimer, in the same tables, measured in turn
# with the main one.
SMALL_BENCH_USER = "bench-claimer-small"
SMALL_BENCH_ROLE = "bench-worker-small"
SMALL_QUEUE_PREFIX = "bench-small-"
METHODS = ("sql", "ceiling", "function", "aging", "express", "service", "http")
# Issue 27: claim-next with aging and an express lane on, against the function with them off, same rounds.
AGING_METHOD = "aging"
EXPRESS_METHOD = "express"
AGING_EXPRESS_THRESHOLD = 90
AGING_EXPRESS_SHARE = 25
AGING_TARGET_RATIO = 0.9
# Spread of created_at over the backlog, so age ordering is not the insertion order.
CREATED_AT_SPREAD_SECONDS = 30 * 24 * 3600
SERVER_START_TIMEOUT_SECONDS = 60
SERVER_WARMUP_REQUESTS = 50
# A client that has not reported this long after its run should have ended is considered hung.
CLIENT_GRACE_SECONDS = 120
# Issue 24's target: the claim function's rate at least this share of the single-row update ceiling's, at
# TARGET_CEILING_CLIENTS clients.
TARGET_CEILING_RATIO = 0.4
TARGET_CEILING_CLIENTS = 16
# Issue 21's targets with stock parts (2-core machine): service/sql at TARGET_SERVICE_CLIENTS clients, http/sql at
# every client count; and the allowed drift between backlog sizes.
TARGET_SERVICE_RATIO = 0.5
TARGET_SERVICE_CLIENTS = 16
TARGET_HTTP_RATIO = 0.2
BACKLOG_TOLERANCE = 0.20
# gunicorn's own worker classes: sync (one request at a time per process, the connection closed after each
# response) or gthread (threads per process, keep-alive).
WORKER_CLASSES = ("sync", "gthread")

# The baseline: the plain claim statement. FOR UPDATE SKIP LOCKED inside each per-queue probe, so concurrent
# claimers pass over each other's rows; the outer UPDATE flips the chosen one.
RAW_CLAIM_SQL = """
WITH next AS (
    SELECT c.task_id
      FROM unnest(%(queues)s::text[]) AS q(queue_name)
      CROSS JOIN LATERAL (
            SELECT t.task_id, t.effective_priority, t.created_at
              FROM flowable.workflow_tasks t
             WHERE t.queue_name = q.queue_name AND t.status = 'OPEN'
             ORDER BY t.effective_priority DESC, t.created_at, t.task_id
             LIMIT 1
               FOR UPDATE OF t SKIP LOCKED
      ) c
     ORDER BY c.effective_priority DESC, c.created_at, c.task_id
     LIMIT 1
)
UPDATE flowable.workflow_tasks t
   SET status = 'CLAIMED', assignee_id = %(user_id)s, claimed_at = clock_timestamp(), updated_at = clock_timestamp()
  FROM next
 WHERE t.task_id = next.task_id
RETURNING t.task_id
"""

# The ceiling: what one write of one row costs on this machine at this moment. A prepared UPDATE by primary key
# of one row of a table as large as the backlog (its own table: no other index, no trigger, no row-level
# security), the same columns set as a claim sets. A claim cannot cost less than this.
CEILING_TABLE = "bench_claim_ceiling"
CEILING_SQL = """
UPDATE {table}
   SET status = 'CLAIMED', assignee_id = %(user_id)s, claimed_at = clock_timestamp(), updated_at = clock_timestamp()
 WHERE id = %(key)s AND status = 'OPEN'
RETURNING id
"""

FUNCTION_CLAIM_SQL = "SELECT task_id FROM flowable.claim_next_task(%(user_id)s, %(queues)s::text[], %(skills)s::text[])"

LOAD_SQL = """
INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
    escalation_level, required_skills, variables, form_fields, created_at, updated_at, task_definition_key,
    delegation_state)
SELECT 'bench ' || g, '', q.name, ARRAY[q.name], 'OPEN', (g * 7919) %% 101, 0, '{}', '{}', '[]',
       now() - make_interval(secs => (g * 104729) %% %(spread)s), now(), '', ''
  FROM generate_series(1::bigint, %(tasks)s) AS g
  CROSS JOIN LATERAL (SELECT (%(queues)s::text[])[1 + g %% %(queue_count)s] AS name) q
"""


@dataclass(frozen=True)
class Bench:
    """What every claimer needs to know; built once in the parent, inherited by the forked claimers."""

    database_url: str
    queues: list[str]
    user_id: int
    token: str
    port: int
    tasks: int = 0  # the backlog's size: OPEN tasks in `queues` after each reset
    ceiling_table: str = CEILING_TABLE  # the ceiling's table, as many rows as `tasks`


@dataclass
class ClientResult:
    task_ids: list[int] = field(default_factory=list)
    latencies_ms: array = field(default_factory=lambda: array("d"))
    started: float = 0.0
    ended: float = 0.0
    errors: list[str] = field(default_factory=list)
    drained: bool = False


@dataclass
class Measurement:
    method: str
    clients: int
    claims: int
    seconds: float
    latencies_ms: list[float]  # sorted
    errors: int
    drained: bool
    problems: list[str]
    round: int = 0

    @property
    def per_second(self) -> float:
        return self.claims / self.seconds if self.seconds else 0.0


@dataclass
class Cell:
    """One method at one client count over all rounds: the median rate, pooled latencies, the median ratio of
    each round's rate to the plain statement's rate in the same round."""

    method: str
    clients: int
    rounds: list[Measurement]
    ratios: list[float]
    ceiling_ratios: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return statistics.median(m.per_second for m in self.rounds)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")

    @property
    def ceiling_ratio(self) -> float:
        return statistics.median(self.ceiling_ratios) if self.ceiling_ratios else float("nan")

    @property
    def latencies_ms(self) -> list[float]:
        return sorted(latency for m in self.rounds for latency in m.latencies_ms)

    @property
    def problems(self) -> list[str]:
        return [problem for m in self.rounds for problem in m.problems]

    @property
    def drained(self) -> bool:
        return any(m.drained for m in self.rounds)


# --- set-up ------------------------------------------------------------------------------------------------------


def set_synchronous_commit(database_url: str, on: bool) -> None:
    """Off takes the WAL flush (the disk) out of each claim's commit, so the figures show the claim path's CPU cost."""
    name = conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(conninfo.make_conninfo(database_url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = {}").format(
                sql.Identifier(name), sql.SQL("on" if on else "off")
            )
        )


def ensure_schema_and_demo(demo_password: str) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("seed_demo", password=demo_password, stdout=io.StringIO())


def ensure_bench_queues_and_user(
    *,
    queue_count: int,
    capacity: int,
    prefix: str = QUEUE_PREFIX,
    username: str = BENCH_USER,
    role_code: str = BENCH_ROLE,
) -> tuple[list[str], int, str]:
    """Bench queues, a role that may work them, a claimer holding only that role, and its API token."""
    from entitlements.models import User, UserRoleAssignment
    from entitlements.services import api_token_create, role_assignment_grant, role_save
    from queues.services import queue_save

    names = [f"{prefix}{i:02d}" for i in range(queue_count)]
    for name in names:
        queue_save(queue_name=name, display_name=f"Benchmark {name}", max_capacity=capacity, current_load=0)
    role = role_save(
        role_code=role_code, name=f"Benchmark claimer ({prefix}*)", queue_names=names, permissions=["work"]
    )
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
    user.set_unusable_password()
    user.save(update_fields=["password"])
    if not UserRoleAssignment.objects.filter(user=user, role=role, revoked_at__isnull=True).exists():
        role_assignment_grant(user=user, role=role, reason="claim benchmark")
    token = api_token_create(user=user)
    return names, user.pk, token.key


def load_backlog(bench: Bench, tasks: int) -> float:
    """Replace the bench queues' tasks with `tasks` OPEN ones (one INSERT ... SELECT generate_series)."""
    started = time.monotonic()
    with psycopg.connect(bench.database_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(
                "DELETE FROM flowable.task_history WHERE task_id IN "
                "(SELECT task_id FROM flowable.workflow_tasks WHERE queue_name = ANY(%s))",
                [bench.queues],
            )
            conn.execute("DELETE FROM flowable.workflow_tasks WHERE queue_name = ANY(%s)", [bench.queues])
            conn.execute(
                "UPDATE queues.workflow_queues SET current_load = 0 WHERE queue_name = ANY(%s)", [bench.queues]
            )
            conn.execute(
                LOAD_SQL,
                {
                    "tasks": tasks,
                    "queues": bench.queues,
                    "queue_count": len(bench.queues),
                    "spread": CREATED_AT_SPREAD_SECONDS,
                },
            )
        vacuum(conn)
    return time.monotonic() - started


TASK_FILLFACTOR_SQL = """
SELECT coalesce((SELECT substr(option, length('fillfactor=') + 1)::int
                   FROM pg_class, unnest(reloptions) AS option
                  WHERE oid = 'flowable.workflow_tasks'::regclass AND option LIKE 'fillfactor=%%'), 100)
"""


def load_ceiling_table(bench: Bench) -> None:
    """The ceiling's table: `bench.tasks` OPEN rows keyed 1..tasks, the columns a claim sets, stored with the task
    table's fillfactor (room on each page for a row's new version, as the task table leaves)."""
    with psycopg.connect(bench.database_url, autocommit=True) as conn:
        table = sql.Identifier(bench.ceiling_table)
        fillfactor = conn.execute(TASK_FILLFACTOR_SQL).fetchone()[0]
        with conn.transaction():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id bigint PRIMARY KEY, status varchar(20) NOT NULL, assignee_id bigint, "
                    "claimed_at timestamptz, updated_at timestamptz NOT NULL) WITH (fillfactor = {})"
                ).format(table, sql.Literal(fillfactor))
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, 'OPEN', NULL, NULL, now() FROM generate_series(1::bigint, %s) AS g"
                ).format(table),
                [bench.tasks],
            )
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))


def ceiling_table_is_current(bench: Bench) -> bool:
    """The ceiling's table exists, holds as many rows as the backlog and has the task table's fillfactor."""
    with psycopg.connect(bench.database_url) as conn:
        if conn.execute("SELECT to_regclass(%s)", [bench.ceiling_table]).fetchone()[0] is None:
            return False
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(bench.ceiling_table))).fetchone()
        options = conn.execute(
            "SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = %s::regclass", [bench.ceiling_table]
        ).fetchone()[0]
        fillfactor = conn.execute(TASK_FILLFACTOR_SQL).fetchone()[0]
        return rows[0] == bench.tasks and (f"fillfactor={fillfactor}" in options or (fillfactor == 100 and not options))


def bench_task_count(bench: Bench) -> int:
    with psycopg.connect(bench.database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM flowable.workflow_tasks WHERE queue_name = ANY(%s)", [bench.queues]
        ).fetchone()[0]


def vacuum(conn: psycopg.Connection) -> None:
    # Claims leave dead index entries at the head of each queue's range; every measurement starts without them.
    for table in ("flowable.workflow_tasks", "flowable.task_history", "queues.workflow_queues"):
        conn.execute(f"VACUUM ANALYZE {table}")


def reset_backlog(bench: Bench) -> None:
    """Put every claimed bench task back to OPEN, drop the bench claims' history, zero the loads, vacuum."""
    with psycopg.connect(bench.database_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(
                "UPDATE flowable.workflow_tasks SET status = 'OPEN', assignee_id = NULL, claimed_at = NULL "
                "WHERE queue_name = ANY(%s) AND status <> 'OPEN'",
                [bench.queues],
            )
            conn.execute("DELETE FROM flowable.task_history WHERE actor_id = %s", [bench.user_id])
            conn.execute(
                "UPDATE queues.workflow_queues SET current_load = 0 WHERE queue_name = ANY(%s)", [bench.queues]
            )
        if conn.execute("SELECT to_regclass(%s)", [bench.ceiling_table]).fetchone()[0] is not None:
            table = sql.Identifier(bench.ceiling_table)
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET status = 'OPEN', assignee_id = NULL, claimed_at = NULL WHERE status <> 'OPEN'"
                ).format(table)
            )
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
        vacuum(conn)


# --- the claimers (each runs in its own forked process) ----------------------------------------------------------


def psycopg_claimer(bench: Bench, statement: str):
    conn = psycopg.connect(bench.database_url, autocommit=True)
    params = {"queues": bench.queues, "user_id": bench.user_id, "skills": []}

    def claim() -> int | None:
        row = conn.execute(statement, params).fetchone()
        return row[0] if row else None

    return claim


def ceiling_claimer(bench: Bench, client: int, clients: int):
    """Client `client` of `clients` updates the keys client+1, client+1+clients, ... in a random order: no two
    clients touch one row, and each update finds its row on a page of the table that the last one did not touch,
    as a claim finds its task wherever the queue's head lives. Prepared on the server from the first call, as a
    claim function's statements are inside it."""
    conn = psycopg.connect(bench.database_url, autocommit=True)
    statement = sql.SQL(CEILING_SQL).format(table=sql.Identifier(bench.ceiling_table))
    keys = list(range(client + 1, bench.tasks + 1, clients))
    random.Random(client).shuffle(keys)
    remaining = iter(keys)

    def claim() -> int | None:
        key = next(remaining, None)
        if key is None:
            return None
        row = conn.execute(statement, {"user_id": bench.user_id, "key": key}, prepare=True).fetchone()
        if row is None:
            raise RuntimeError(f"ceiling row {key} was not OPEN")
        return row[0]

    return claim


def service_claimer(bench: Bench):
    from django.db import connection

    from entitlements.models import User
    from tasks.services import task_claim_next

    user = User.objects.get(pk=bench.user_id)
    connection.ensure_connection()

    def claim() -> int | None:
        task = task_claim_next(user=user)
        return task.task_id if task else None

    return claim


class HttpClaimFailed(Exception):
    pass


class HttpClient:
    """A minimal HTTP/1.1 client for one fixed request: the load generator should cost as little CPU as it can.

    On a 2-core machine the claimers share the cores with gunicorn and PostgreSQL; http.client parses headers with
    the email package, several times this client's CPU per request (bench/RESULTS.md). It keeps the connection open
    while the server allows (gthread workers) and reconnects when the server closes it (sync workers).
    """

    def __init__(self, host: str, port: int, request: bytes):
        self.address = (host, port)
        self.request = request
        self.sock: socket.socket | None = None
        self.buffer = b""

    def connect(self) -> None:
        self.sock = socket.create_connection(self.address, timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _read_more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection mid-response")
        self.buffer += chunk

    def send(self) -> tuple[int, bytes]:
        """Send the request, return (status, body)."""
        if self.sock is None:
            self.connect()
        try:
            self.sock.sendall(self.request)
            while (end := self.buffer.find(b"\r\n\r\n")) < 0:
                self._read_more()
        except (BrokenPipeError, ConnectionError):
            if self.buffer:
                raise
            # A kept-alive connection the server had already closed: once more on a new one.
            self.close()
            self.connect()
            self.sock.sendall(self.request)
            while (end := self.buffer.find(b"\r\n\r\n")) < 0:
                self._read_more()
        head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4 :]
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._read_more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body


def http_claimer(bench: Bench):
    request = (
        f"POST {CLAIM_NEXT_PATH} HTTP/1.1\r\nHost: {HTTP_HOST}:{bench.port}\r\n"
        f"Authorization: Token {bench.token}\r\nAccept: application/json\r\nContent-Length: 0\r\n\r\n"
    ).encode("latin-1")
    client = HttpClient(HTTP_HOST, bench.port, request)

    def claim() -> int | None:
        status, body = client.send()
        if status == 204:
            return None
        if status != 200:
            raise HttpClaimFailed(f"HTTP {status}: {body[:200]!r}")
        return json.loads(body)["id"]

    return claim


# Each factory gets the bench, the claimer's index and the number of claimers.
CLAIMER_FACTORIES = {
    "sql": lambda bench, client, clients: psycopg_claimer(bench, RAW_CLAIM_SQL),
    "ceiling": ceiling_claimer,
    "function": lambda bench, client, clients: psycopg_claimer(bench, FUNCTION_CLAIM_SQL),
    "aging": lambda bench, client, clients: psycopg_claimer(bench, FUNCTION_CLAIM_SQL),
    "express": lambda bench, client, clients: psycopg_claimer(bench, FUNCTION_CLAIM_SQL),
    "service": lambda bench, client, clients: service_claimer(bench),
    "http": lambda bench, client, clients: http_claimer(bench),
}


def claim_for(seconds: float, claim) -> ClientResult:
    """Claim as fast as possible until `seconds` have passed or nothing is left."""
    result = ClientResult(started=time.monotonic())
    deadline = result.started + seconds
    now = result.started
    while now < deadline:
        try:
            task_id = claim()
        except Exception as exc:  # reported and counted by the parent; the run fails verification
            result.errors.append(f"{type(exc).__name__}: {exc}")
            break
        finished = time.monotonic()
        if task_id is None:
            result.drained = True
            break
        result.task_ids.append(task_id)
        result.latencies_ms.append((finished - now) * 1000.0)
        now = finished
    result.ended = time.monotonic()
    return result


def client_process(method: str, bench: Bench, client: int, clients: int, seconds: float, ready, results) -> None:
    try:
        claim = CLAIMER_FACTORIES[method](bench, client, clients)
    except Exception as exc:
        ready.wait(timeout=CLIENT_GRACE_SECONDS)
        results.put(ClientResult(errors=[f"setup: {type(exc).__name__}: {exc}"]))
        return
    ready.wait(timeout=CLIENT_GRACE_SECONDS)  # everyone connected: start together
    results.put(claim_for(seconds, claim))


# --- one measurement ---------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))]


def run_clients(method: str, bench: Bench, clients: int, seconds: float) -> list[ClientResult]:
    from django.db import connections

    connections.close_all()  # no parent connection may be shared with the forked claimers
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(clients)
    results = context.Queue()
    processes = [
        context.Process(
            target=client_process, args=(method, bench, client, clients, seconds, ready, results), daemon=True
        )
        for client in range(clients)
    ]
    for process in processes:
        process.start()
    collected = [results.get(timeout=seconds + CLIENT_GRACE_SECONDS) for _ in processes]
    for process in processes:
        process.join(timeout=CLIENT_GRACE_SECONDS)
    return collected


def verify(method: str, bench: Bench, task_ids: list[int]) -> list[str]:
    """The invariants: no double claim, every claim recorded once, loads equal CLAIMED counts."""
    problems = []
    if len(set(task_ids)) != len(task_ids):
        problems.append(f"{len(task_ids) - len(set(task_ids))} task ids handed out more than once")
    with psycopg.connect(bench.database_url) as conn:
        if method == "ceiling":
            updated = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE status = 'CLAIMED'").format(sql.Identifier(bench.ceiling_table))
            ).fetchone()[0]
            if updated != len(task_ids):
                problems.append(f"{updated} CLAIMED ceiling rows, {len(task_ids)} updates reported")
            return problems
        claimed = conn.execute(
            "SELECT count(*) FROM flowable.workflow_tasks WHERE queue_name = ANY(%s) AND status = 'CLAIMED'",
            [bench.queues],
        ).fetchone()[0]
        if claimed != len(task_ids):
            problems.append(f"{claimed} CLAIMED tasks in the database, {len(task_ids)} claims reported")
        if method == "sql":
            return problems  # the plain statement keeps neither history nor queue load
        events, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT task_id) FROM flowable.task_history "
            "WHERE actor_id = %s AND event_type = 'CLAIMED'",
            [bench.user_id],
        ).fetchone()
        if events != distinct:
            problems.append(f"{events - distinct} tasks have more than one CLAIMED history row")
        if events != len(task_ids):
            problems.append(f"{events} CLAIMED history rows for {len(task_ids)} claims")
        off = conn.execute(
            """
            SELECT q.queue_name, q.current_load, count(t.task_id)
              FROM queues.workflow_queues q
              LEFT JOIN flowable.workflow_tasks t ON t.queue_name = q.queue_name AND t.status = 'CLAIMED'
             WHERE q.queue_name = ANY(%s)
             GROUP BY q.queue_name, q.current_load
            HAVING q.current_load <> count(t.task_id)
            """,
            [bench.queues],
        ).fetchall()
        for name, load, count in off:
            problems.append(f"queue {name}: current_load {load}, CLAIMED {count}")
    return problems


def aging_set(bench: Bench, on: bool, lane: bool = False) -> None:
    """Aging on the bench queues on (the aging job boosts every OPEN task) or off (the job clears the boosts), with
    or without the express lane; the lane's credit full either way. Vacuumed after, as every reset is."""
    from entitlements.row_scope import system_scope
    from queues.models import WorkflowQueue
    from tasks.sla.aging import task_priorities_age

    queues = WorkflowQueue.objects.filter(queue_name__in=bench.queues)
    queues.update(
        aging_enabled=on,
        priority_weight=1,
        express_threshold=AGING_EXPRESS_THRESHOLD if lane else None,
        express_share_percent=AGING_EXPRESS_SHARE,
        express_credit=100,
    )
    with system_scope():
        for name in bench.queues:
            task_priorities_age(queue_name=name)
    with psycopg.connect(bench.database_url, autocommit=True) as conn:
        vacuum(conn)


def aging_set_credit_full(bench: Bench) -> None:
    with psycopg.connect(bench.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE queues.workflow_queues SET express_credit = 100 WHERE queue_name = ANY(%s)", [bench.queues]
        )


def aging_state(bench: Bench) -> tuple[bool, bool]:
    """(aging on, express lane on) on the bench queues."""
    with psycopg.connect(bench.database_url) as conn:
        return conn.execute(
            "SELECT coalesce(bool_or(aging_enabled), false), coalesce(bool_or(express_threshold IS NOT NULL), false) "
            "FROM queues.workflow_queues WHERE queue_name = ANY(%s)",
            [bench.queues],
        ).fetchone()


def measure(method: str, bench: Bench, clients: int, seconds: float, round_: int = 0) -> Measurement:
    reset_backlog(bench)
    wanted = (method in (AGING_METHOD, EXPRESS_METHOD), method == EXPRESS_METHOD)
    if aging_state(bench) != wanted:
        aging_set(bench, on=wanted[0], lane=wanted[1])
    else:
        aging_set_credit_full(bench)
    results = run_clients(method, bench, clients, seconds)
    task_ids = [task_id for result in results for task_id in result.task_ids]
    latencies = sorted(latency for result in results for latency in result.latencies_ms)
    started = min((r.started for r in results if r.started), default=0.0)
    ended = max((r.ended for r in results if r.ended), default=0.0)
    errors = [error for result in results for error in result.errors]
    problems = verify(method, bench, task_ids)
    if errors:
        problems.append(f"{len(errors)} claimer errors, first: {errors[0]}")
    return Measurement(
        method=method,
        clients=clients,
        claims=len(task_ids),
        seconds=max(ended - started, 0.0),
        latencies_ms=latencies,
        errors=len(errors),
        drained=any(r.drained for r in results),
        problems=problems,
        round=round_,
    )


# --- the HTTP server ---------------------------------------------------------------------------------------------


def start_gunicorn(args, bench: Bench) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": bench.database_url,
        "DATABASE_POOL": "true" if args.pool else "false",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        # The claimers are one account calling as fast as they can: the API's rate limit would measure itself.
        "API_THROTTLE_USER_RATE": "off",
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "workflow_project.wsgi",
        "--config",
        "python:workflow_project.gunicorn_config",
        "--bind",
        f"{HTTP_HOST}:{bench.port}",
        "--workers",
        str(args.http_workers),
        "--threads",
        str(args.http_threads),
        "--worker-class",
        args.http_worker_class,
        "--keep-alive",
        "60",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, start_new_session=True)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection(HTTP_HOST, bench.port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        stop_gunicorn(server)
        raise SystemExit("gunicorn did not answer /healthz")
    warm_up(bench)
    return server


def warm_up(bench: Bench) -> None:
    """First requests import and build things lazily in each worker; keep that out of the measurement."""
    claim = http_claimer(bench)
    for _ in range(SERVER_WARMUP_REQUESTS):
        claim()


def stop_gunicorn(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --- the whole run -----------------------------------------------------------------------------------------------


BASELINE = "sql"


def round_sequence(methods: list[str], round_: int) -> list[str]:
    """The measurements of one round at one client count: the plain statement before and after every other method.

    sql, a, sql, b, sql, c, sql: each method is measured between two baseline measurements taken seconds before
    and after it, with the other methods in an order that rotates between rounds (none always first or last).
    Without the baseline among `methods`, just the rotated order.
    """
    others = [method for method in methods if method != BASELINE]
    shift = round_ % len(others) if others else 0
    others = others[shift:] + others[:shift]
    if BASELINE not in methods:
        return others
    sequence = [BASELINE]
    for method in others:
        sequence += [method, BASELINE]
    return sequence


def bracketed_ratios(measured: list[tuple[str, float]]) -> dict[str, float]:
    """Each method's rate divided by the geometric mean of the baseline's rates just before and just after it.

    `measured` is one round's (method, claims/s) in the order of round_sequence. A machine whose speed drifts
    during the round moves both neighbours with the method, so the ratio keeps the code's cost, not the drift.
    The baseline itself gets 1.0. Methods without a baseline on both sides (no sql in the run) get no ratio.
    """
    ratios = {}
    for i, (method, rate) in enumerate(measured):
        if method == BASELINE:
            ratios[method] = 1.0
            continue
        before = measured[i - 1] if i > 0 else None
        after = measured[i + 1] if i + 1 < len(measured) else None
        if before and after and before[0] == after[0] == BASELINE and before[1] > 0 and after[1] > 0:
            ratios[method] = rate / math.sqrt(before[1] * after[1])
    return ratios


CEILING = "ceiling"


def ceiling_ratios(measured: list[tuple[str, float]]) -> dict[str, float]:
    """Each method's rate over the single-row update ceiling's, in one round.

    With the baseline in the round, it is the method's bracketed ratio over the ceiling's (each taken against the
    plain statement measured just before and after it, so drift between the two measurements cancels); without
    it, the plain rates. No ceiling measured (or none with claims), no ratios.
    """
    bracketed = bracketed_ratios(measured)
    if bracketed.get(CEILING):
        return {method: ratio / bracketed[CEILING] for method, ratio in bracketed.items()}
    rates = dict(measured)
    if BASELINE in rates or not rates.get(CEILING):
        return {}
    return {method: rate / rates[CEILING] for method, rate in rates.items()}


def backlog_ratios_of(small: list[tuple[str, float]], large: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """(method, rate at the large backlog / rate at the small) for each pair of measurements taken back to back:
    the n-th measurement of one round on each backlog. Pairs with no claims at the small backlog are left out."""
    pairs = []
    for (method, small_rate), (large_method, large_rate) in zip(small, large, strict=True):
        assert method == large_method, "both backlogs are measured in the same order"
        if small_rate > 0:
            pairs.append((method, large_rate / small_rate))
    return pairs


@dataclass
class Results:
    """Every backlog's cells, and each method's per-round rate at the larger backlog over its rate at the smaller,
    the two measured one right after the other."""

    cells: dict[int, list[Cell]]
    backlog_ratios: dict[tuple[str, int], list[float]]


def run_methods(args, benches: list[Bench]) -> Results:
    """Every round measures every method at every client count, each one bracketed by the plain statement.

    Measured that way, each method's ratio has the plain statement's figures beside it, taken within seconds
    before and after: on a shared machine whose speed drifts, ratios of figures measured far apart mostly
    measure the drift. With two backlogs (--compare-backlog) every measurement is taken on both, one right after
    the other, the smaller first in odd rounds and the larger first in even ones.
    """
    rounds: dict[tuple[int, str, int], list[Measurement]] = {}
    ratios: dict[tuple[int, str, int], list[float]] = {}
    to_ceiling: dict[tuple[int, str, int], list[float]] = {}
    backlog_ratios: dict[tuple[str, int], list[float]] = {}
    sizes = sorted(bench.tasks for bench in benches)
    server = start_gunicorn(args, benches[0]) if "http" in args.methods else None
    try:
        for round_ in range(1, args.rounds + 1):
            for clients in args.clients:
                order = benches if round_ % 2 else benches[::-1]
                measured: dict[int, list[tuple[str, float]]] = {bench.tasks: [] for bench in benches}
                for method in round_sequence(args.methods, round_ - 1):
                    for bench in order:
                        m = measure(method, bench, clients, args.seconds, round_)
                        status = "ok" if not m.problems else "FAILED: " + "; ".join(m.problems)
                        backlog = f" {bench.tasks:>9,} tasks" if len(benches) > 1 else ""
                        print(
                            f"  round {round_}  {method:<8} {clients:>3} clients{backlog}: {m.per_second:8.0f} "
                            f"claims/s  ({m.claims} claims, {status})",
                            flush=True,
                        )
                        rounds.setdefault((bench.tasks, method, clients), []).append(m)
                        measured[bench.tasks].append((method, m.per_second))
                if len(sizes) == 2:
                    for method, ratio in backlog_ratios_of(measured[sizes[0]], measured[sizes[1]]):
                        backlog_ratios.setdefault((method, clients), []).append(ratio)
                for tasks, sequence in measured.items():
                    for method, ratio in bracketed_ratios(sequence).items():
                        ratios.setdefault((tasks, method, clients), []).append(ratio)
                    for method, ratio in ceiling_ratios(sequence).items():
                        to_ceiling.setdefault((tasks, method, clients), []).append(ratio)
    finally:
        if server is not None:
            stop_gunicorn(server)
    for bench in benches:
        reset_backlog(bench)
        if aging_state(bench) != (False, False):
            aging_set(bench, on=False)
    cells = {
        bench.tasks: [
            Cell(
                method=method,
                clients=clients,
                rounds=rounds[(bench.tasks, method, clients)],
                ratios=ratios.get((bench.tasks, method, clients), []),
                ceiling_ratios=to_ceiling.get((bench.tasks, method, clients), []),
            )
            for method in args.methods
            for clients in args.clients
        ]
        for bench in benches
    }
    return Results(cells=cells, backlog_ratios=backlog_ratios)


def print_table(cells: list[Cell], title: str) -> None:
    print(f"\n{title}")
    print(
        f"{'method':<9}{'clients':>8}{'claims/s':>10}{'(min–max)':>14}{'p50 ms':>9}{'p99 ms':>9}{'÷ sql':>7}"
        f"{'(min–max)':>13}{'÷ ceiling':>11}{'(min–max)':>13}  checks"
    )
    for cell in cells:
        rates = [m.per_second for m in cell.rounds]
        latencies = cell.latencies_ms
        spread = f"({min(cell.ratios):.2f}–{max(cell.ratios):.2f})" if cell.ratios else ""
        to_ceiling = cell.ceiling_ratios
        ceiling_spread = f"({min(to_ceiling):.2f}–{max(to_ceiling):.2f})" if to_ceiling else ""
        checks = "ok" if not cell.problems else "FAILED"
        if cell.drained:
            checks += " (backlog drained)"
        print(
            f"{cell.method:<9}{cell.clients:>8}{cell.per_second:>10.0f}{f'({min(rates):.0f}–{max(rates):.0f})':>14}"
            f"{percentile(latencies, 0.50):>9.2f}{percentile(latencies, 0.99):>9.2f}{cell.ratio:>7.2f}{spread:>13}"
            f"{cell.ceiling_ratio:>11.2f}{ceiling_spread:>13}  {checks}"
        )


def print_targets(cells: list[Cell]) -> None:
    print("\nTargets (issues 21 and 24, 2 cores; median over rounds of each round's ratio):")
    for cell in cells:
        if cell.method == "function" and cell.clients == TARGET_CEILING_CLIENTS and cell.ceiling_ratios:
            print(
                f"  function/ceiling at {cell.clients:>2} clients = {cell.ceiling_ratio:.2f}  (target ≥ "
                f"{TARGET_CEILING_RATIO}: {'met' if cell.ceiling_ratio >= TARGET_CEILING_RATIO else 'MISSED'})"
            )
        if not cell.ratios:
            continue
        if cell.method == "service" and cell.clients == TARGET_SERVICE_CLIENTS:
            print(
                f"  service/sql at {cell.clients:>2} clients = {cell.ratio:.2f}  (target ≥ {TARGET_SERVICE_RATIO}: "
                f"{'met' if cell.ratio >= TARGET_SERVICE_RATIO else 'MISSED'})"
            )
        elif cell.method in (AGING_METHOD, EXPRESS_METHOD):
            print_aging_target(cell, cells)
        elif cell.method == "http":
            print(
                f"  http/sql    at {cell.clients:>2} clients = {cell.ratio:.2f}  (target ≥ {TARGET_HTTP_RATIO}: "
                f"{'met' if cell.ratio >= TARGET_HTTP_RATIO else 'MISSED'})"
            )


def print_aging_target(cell: Cell, cells: list[Cell]) -> None:
    """Aging on over off: per round, the aging rate ÷ sql over the function's rate ÷ sql, the median of those."""
    function = next((c for c in cells if c.method == "function" and c.clients == cell.clients), None)
    if function is None or len(function.ratios) != len(cell.ratios):
        return
    ratio = statistics.median(a / f for a, f in zip(cell.ratios, function.ratios, strict=True))
    print(
        f"  {cell.method}/function at {cell.clients:>2} clients = {ratio:.2f}  (target ≥ {AGING_TARGET_RATIO}: "
        f"{'met' if ratio >= AGING_TARGET_RATIO else 'MISSED'})"
    )


def print_backlog_comparison(results: Results, small_n: int, large_n: int) -> bool:
    """Per method and client count: the median over the rounds of the rate at `large_n` over the rate at
    `small_n` measured right before or after it. True if every one is within BACKLOG_TOLERANCE."""
    print(
        f"\nBacklog {small_n:,} vs {large_n:,} (median claims/s of each; change = median of the rounds' "
        f"large/small ratios, the two measured back to back; target: within {BACKLOG_TOLERANCE:.0%})"
    )
    small_cells = {(c.method, c.clients): c for c in results.cells[small_n]}
    all_within = True
    for cell in results.cells[large_n]:
        pairs = results.backlog_ratios.get((cell.method, cell.clients))
        if not pairs:
            continue
        change = statistics.median(pairs) - 1
        within = abs(change) <= BACKLOG_TOLERANCE
        all_within &= within
        print(
            f"  {cell.method:<8} {cell.clients:>3} clients: {small_cells[(cell.method, cell.clients)].per_second:8.0f}"
            f" → {cell.per_second:8.0f}  ({change:+.0%}, rounds {min(pairs) - 1:+.0%} to {max(pairs) - 1:+.0%}, "
            f"{'within' if within else 'OUTSIDE'})"
        )
    return all_within


def ensure_loaded(args, bench: Bench) -> None:
    if args.reload or bench_task_count(bench) != bench.tasks:
        seconds = load_backlog(bench, bench.tasks)
        print(
            f"loaded {bench.tasks:,} OPEN tasks into {len(bench.queues)} queues ({bench.queues[0]}…) in "
            f"{seconds:.1f} s (incl. VACUUM ANALYZE)"
        )
    else:
        print(f"reusing the {bench.tasks:,} bench tasks already loaded in {bench.queues[0]}…")
    if CEILING in args.methods and (args.reload or not ceiling_table_is_current(bench)):
        load_ceiling_table(bench)
        print(f"loaded the ceiling's table {bench.ceiling_table} with {bench.tasks:,} rows")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1_000_000, help="OPEN tasks in the backlog (default 1,000,000)")
    parser.add_argument("--queues", type=int, default=20, help="bench queues the tasks are spread over (default 20)")
    parser.add_argument(
        "--clients", default="1,4,16", help="comma-separated concurrent claimer counts (default 1,4,16)"
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each measurement (default 4)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="times every cell is measured, each method between two sql measurements (default 5; "
        "the table shows medians)",
    )
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help=f"the benchmark's own database (default {DEFAULT_DATABASE_URL}; BENCH_DATABASE_URL)",
    )
    parser.add_argument("--port", type=int, default=8765, help="port for the gunicorn the script starts (default 8765)")
    parser.add_argument("--http-workers", type=int, default=4, help="gunicorn worker processes (default 4: 2 per core)")
    parser.add_argument(
        "--http-threads", type=int, default=1, help="gunicorn threads per worker, gthread only (default 1)"
    )
    parser.add_argument(
        "--http-worker-class",
        default="sync",
        choices=WORKER_CLASSES,
        help="gunicorn worker class (default sync: one request at a time per process, the connection "
        "closed after each response; gthread: --http-threads threads per process, connections "
        "kept open)",
    )
    parser.add_argument(
        "--pool",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="DATABASE_POOL for gunicorn: Django's psycopg pool, a checkout per request (default off, "
        "as in the settings: one persistent connection per worker, CONN_HEALTH_CHECKS on)",
    )
    parser.add_argument(
        "--synchronous-commit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="synchronous_commit of the bench database (default on; off: no disk flush per claim)",
    )
    parser.add_argument(
        "--compare-backlog",
        type=int,
        metavar="N",
        help="also measure a backlog of N tasks (e.g. 100000) in its own queues, every measurement "
        "taken on both backlogs one right after the other, and compare them",
    )
    parser.add_argument("--reload", action="store_true", help="reload the backlog even if it has the right size")
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(args.methods) - set(METHODS)
    if unknown or not args.clients or min(args.clients) < 1 or args.seconds <= 0 or args.tasks < 1 or args.rounds < 1:
        parser.error(f"bad --methods/--clients/--seconds/--tasks/--rounds (unknown methods: {sorted(unknown)})")
    if args.compare_backlog is not None and (args.compare_backlog < 1 or args.compare_backlog == args.tasks):
        parser.error("--compare-backlog must be a positive number of tasks other than --tasks")
    if not HTTP_HOST.startswith("127."):
        parser.error("the benchmark talks to 127.0.0.1 only")
    return args


def python_build() -> str:
    """The interpreter the claimers and gunicorn run on: its speed moves the service and HTTP figures."""
    try:
        with open("/proc/self/maps") as maps:
            linkage = "shared libpython" if any("libpython" in line for line in maps) else "static libpython"
    except OSError:
        linkage = "libpython linkage unknown"
    return f"Python {platform.python_version()} ({sys.executable}, {linkage})"


def main(argv=None) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url)
    set_synchronous_commit(args.database_url, args.synchronous_commit)
    django_setup(args.database_url)
    ensure_schema_and_demo(demo_password=secrets.token_urlsafe(12))
    queues, user_id, token = ensure_bench_queues_and_user(queue_count=args.queues, capacity=args.tasks)
    bench = Bench(
        database_url=args.database_url, queues=queues, user_id=user_id, token=token, port=args.port, tasks=args.tasks
    )
    benches = [bench]
    if args.compare_backlog:
        queues, user_id, token = ensure_bench_queues_and_user(
            queue_count=args.queues,
            capacity=args.compare_backlog,
            prefix=SMALL_QUEUE_PREFIX,
            username=SMALL_BENCH_USER,
            role_code=SMALL_BENCH_ROLE,
        )
        benches.insert(
            0,
            Bench(
                database_url=args.database_url,
                queues=queues,
                user_id=user_id,
                token=token,
                port=args.port,
                tasks=args.compare_backlog,
                ceiling_table=f"{CEILING_TABLE}_small",
            ),
        )
    print(
        f"database {conninfo.conninfo_to_dict(args.database_url)['dbname']}, claimer {BENCH_USER}, "
        f"{os.cpu_count()} CPUs; every claimer is a process; gunicorn {args.http_workers}×{args.http_threads} "
        f"{args.http_worker_class}, DATABASE_POOL={'on' if args.pool else 'off'}, "
        f"synchronous_commit={'on' if args.synchronous_commit else 'off'}; {python_build()}"
    )

    for each in benches:
        ensure_loaded(args, each)
    print(
        f"measuring {', '.join(args.methods)} at {args.clients} clients, {args.rounds} rounds of {args.seconds:g} s"
        + (f", each on {args.compare_backlog:,} and {args.tasks:,} tasks in turn" if args.compare_backlog else ""),
        flush=True,
    )
    results = run_methods(args, benches)
    for each in benches:
        print_table(
            results.cells[each.tasks],
            f"{each.tasks:,} OPEN tasks in {len(each.queues)} queues, {args.rounds} rounds of {args.seconds:g} s",
        )
    print_targets(results.cells[args.tasks])
    if args.compare_backlog:
        print_backlog_comparison(results, args.compare_backlog, args.tasks)
    failed = any(cell.problems for cells in results.cells.values() for cell in cells)
    if failed:
        print("\nINVARIANT VIOLATED: see the FAILED rows above", file=sys.stderr)
        return 1
    print("\nAll checks passed: no task claimed twice; history and queue loads agree with the claims.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
