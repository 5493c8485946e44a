"""Online partitioning benchmark: claims per second before, during and after `partition_task_history` moves a
single-table history of --history events (default 1,000,000) into month partitions, in one run.

It loads the history (ten events per finished task, spread over the last twelve months) into the table as it was
before migration 0026 (one table: tasks.history_partitioning.task_history_unpartition) and a backlog of OPEN
tasks, then runs --clients claimers (each a process calling flowable.claim_next_task with psycopg: the claim, the
queue load, the history row) for --seconds before, for the whole move (tasks.history_partitioning.
task_history_partition in this process, as the command runs it) and for --seconds after. It prints claims per
second in each phase, the ratio to "before", the longest pause between two claims and the move's own figures, and
checks that no task was claimed twice and that every claim left exactly one CLAIMED event in the partitioned table.

    .venv/bin/python bench/history_partitioning.py [--history 1000000] [--clients 4] [--seconds 20]
        [--batch-size 20000] [--duty 0.5] [--database-url URL]

Runs as the database's superuser on its own database (workflow_bench_history by default).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time

import psycopg
from common import django_setup, ensure_database  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/workflow_bench_history"
QUEUES = [f"bench-hist-{n}" for n in range(4)]
DONE_QUEUE = "bench-hist-done"
CLAIM_SQL = "SELECT task_id FROM flowable.claim_next_task(%s, %s::text[], '{}'::text[])"

LOAD_DONE_TASKS_SQL = """
INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
    escalation_level, required_skills, variables, form_fields, created_at, updated_at, completed_at,
    task_definition_key, delegation_state)
SELECT 'done ' || g, '', %(queue)s, '{}', 'COMPLETED', 50, 0, '{}', '{}', '[]', now() - interval '1 year', now(),
       now(), '', ''
  FROM generate_series(1::bigint, %(tasks)s) AS g
"""

LOAD_HISTORY_SQL = """
INSERT INTO flowable.task_history (task_id, event_type, old_values, new_values, comment, created_at, actor_id)
SELECT t.task_id, (ARRAY['CREATED', 'CLAIMED', 'COMMENTED', 'RELEASED', 'CLAIMED', 'COMMENTED', 'PRIORITY_CHANGED',
                         'COMMENTED', 'CLAIMED', 'COMPLETED'])[e],
       '{}', jsonb_build_object('step', e), '', now() - make_interval(secs => ((t.task_id * 7919 + e) %% 31536000)::int),
       %(actor)s
  FROM flowable.workflow_tasks t CROSS JOIN generate_series(1, 10) AS e
 WHERE t.queue_name = %(queue)s
"""

LOAD_BACKLOG_SQL = """
INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
    escalation_level, required_skills, variables, form_fields, created_at, updated_at, task_definition_key,
    delegation_state)
SELECT 'bench ' || g, '', (%(queues)s::text[])[1 + g %% 4], '{}', 'OPEN', (g * 7919) %% 101, 0, '{}', '{}', '[]',
       now() - make_interval(secs => ((g * 104729) %% 86400)::int), now(), '', ''
  FROM generate_series(1::bigint, %(tasks)s) AS g
"""


def claimer(url: str, user_id: int, stop, results) -> None:
    stamps, ids = [], []
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute(CLAIM_SQL, [user_id, QUEUES]).fetchone()
            if row and row[0] is not None:
                stamps.append(time.time())
                ids.append(row[0])
    results.put((stamps, ids))


def run_with_claimers(url: str, user_id: int, clients: int, work) -> tuple[list[float], list[int], float, float]:
    """Claimers run while `work()` does; (claim times, task ids, work's start, work's end)."""
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    stop, results = context.Event(), context.Queue()
    processes = [context.Process(target=claimer, args=(url, user_id, stop, results)) for _ in range(clients)]
    for process in processes:
        process.start()
    time.sleep(1.0)  # connected and claiming
    started = time.time()
    try:
        work()
    finally:
        ended = time.time()
        stop.set()
    collected = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    stamps = sorted(stamp for part, _ in collected for stamp in part)
    ids = [task_id for _, part in collected for task_id in part]
    return stamps, ids, started, ended


def phase(stamps: list[float], started: float, ended: float) -> tuple[int, float, float]:
    """Claims in [started, ended), claims per second, longest gap between claims (ms) in it."""
    inside = [s for s in stamps if started <= s < ended]
    gaps = [b - a for a, b in zip([started, *inside], [*inside, ended], strict=True)]
    return len(inside), len(inside) / (ended - started), max(gaps) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--history", type=int, default=1_000_000, help="events in the history to move")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the before and after phases")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--duty", type=float, default=0.5, help="share of the time the move's copy works")
    args = parser.parse_args(argv)
    ensure_database(args.database_url)
    django_setup(args.database_url)
    from django.core.management import call_command
    from django.db import connection, transaction

    from entitlements.models import User
    from queues.models import WorkflowQueue
    from tasks.history_partitioning import task_history_partition, task_history_unpartition

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench-history", defaults={"is_active": True})
    for name in [*QUEUES, DONE_QUEUE]:
        WorkflowQueue.objects.update_or_create(
            queue_name=name, defaults={"display_name": name, "max_capacity": 10_000_000, "current_load": 0}
        )
    backlog = int(args.clients * 3000 * (2 * args.seconds + 120) / 60) + 50_000
    print(f"loading {args.history:,} history events and {backlog:,} OPEN tasks ...", flush=True)
    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute("DELETE FROM flowable.task_history")  # the superuser may (entitlements.refuse_history_rewrite)
        cursor.execute("DELETE FROM flowable.workflow_tasks WHERE queue_name = ANY(%s)", [[*QUEUES, DONE_QUEUE]])
        task_history_unpartition(cursor)
        cursor.execute(LOAD_DONE_TASKS_SQL, {"queue": DONE_QUEUE, "tasks": args.history // 10})
        cursor.execute(LOAD_HISTORY_SQL, {"queue": DONE_QUEUE, "actor": user.pk})
        cursor.execute(LOAD_BACKLOG_SQL, {"queues": QUEUES, "tasks": backlog})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE flowable.task_history")
        cursor.execute("VACUUM ANALYZE flowable.workflow_tasks")
        cursor.execute(
            "SELECT count(*), pg_size_pretty(pg_total_relation_size('flowable.task_history')) "
            "FROM flowable.task_history"
        )
        events, size = cursor.fetchone()
    print(f"loaded in {time.perf_counter() - began:.0f} s: {events:,} events ({size}), one table", flush=True)

    moved = {}

    def move():
        result = task_history_partition(batch_size=args.batch_size, duty=args.duty)
        moved["result"] = result

    before = run_with_claimers(args.database_url, user.pk, args.clients, lambda: time.sleep(args.seconds))
    during = run_with_claimers(args.database_url, user.pk, args.clients, move)
    after = run_with_claimers(args.database_url, user.pk, args.clients, lambda: time.sleep(args.seconds))

    rows = []
    for name, (stamps, _ids, started, ended) in (("before", before), ("during the move", during), ("after", after)):
        rows.append((name, ended - started, *phase(stamps, started, ended)))
    base = rows[0][3]
    print(f"\n{args.clients} claimers, history {events:,} events, batches of {args.batch_size:,}, duty {args.duty}")
    print(f"{'phase':<16} {'seconds':>8} {'claims':>8} {'claims/s':>9} {'÷ before':>9} {'longest gap ms':>15}")
    for name, seconds, claims, rate, gap in rows:
        print(f"{name:<16} {seconds:>8.1f} {claims:>8,} {rate:>9.1f} {rate / base:>9.2f} {gap:>15.0f}")
    result = moved["result"]
    print(
        f"move: {result.rows_copied:,} events copied in {result.batches} batches, switched in "
        f"{result.cutover_attempts} attempt(s), {len(result.partitions)} partitions; seconds: "
        + ", ".join(f"{step} {seconds:.2f}" for step, seconds in result.seconds.items())
    )

    problems = []
    ids = before[1] + during[1] + after[1]
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} tasks claimed twice")
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = 'flowable.task_history'::regclass")
        if cursor.fetchone()[0] != "p":
            problems.append("the history is not partitioned")
        cursor.execute(
            "SELECT count(*), count(DISTINCT h.task_id) FROM flowable.task_history h "
            "JOIN flowable.workflow_tasks t ON t.task_id = h.task_id WHERE t.queue_name = ANY(%s) "
            "AND h.event_type = 'CLAIMED'",
            [QUEUES],
        )
        claimed_events, distinct = cursor.fetchone()
        if claimed_events != len(ids) or distinct != len(ids):
            problems.append(f"{claimed_events} CLAIMED events ({distinct} tasks) for {len(ids)} claims")
        cursor.execute("SELECT count(*) FROM flowable.task_history")
        if cursor.fetchone()[0] != events + len(ids):
            problems.append("events lost or duplicated by the move")
    ratio = rows[1][3] / base
    print(f"target: claims/s during the move >= 0.5 x before: {ratio:.2f} — {'met' if ratio >= 0.5 else 'MISSED'}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"median claims/s over the three phases: {statistics.median(r[3] for r in rows):.1f}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
