"""The SLA-risk beat job (tasks/forecast/services.py: task_risks_refresh) at production scale, and what it costs
claim-next while it runs.

Loads N OPEN tasks (default 1M) over 20 queues, due within three days, plus a four-week history of completed tasks
per queue (claimed and completed by the bench caseworker), then:

  1. claim-next throughput for --seconds with nothing else running (one client, flowable.claim_next_task);
  2. the job once, in a child process: wall time, the child's peak RSS, rows written to flowable.task_risks
     (inserted + updated + deleted, from pg_stat_user_tables) and WAL bytes (pg_current_wal_lsn before and after;
     the cluster's WAL, so other databases' writes on a shared server count too);
  3. the job again while claim-next runs for --seconds (the throughput beside the job), same figures;
  4. the job a third time with nothing changed since the second (what a quiet five minutes costs).

Claimed tasks are put back to OPEN after each claim run. Every run starts from an empty task_risks.

    .venv/bin/python bench/forecast_job.py --database-url postgresql://postgres@127.0.0.1:5432/h_fc
    .venv/bin/python bench/forecast_job.py --tasks 200000 --reload
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.claim import FUNCTION_CLAIM_SQL, Bench, claim_for, ensure_bench_queues_and_user  # noqa: E402
from bench.common import DEFAULT_DATABASE_URL, django_setup, ensure_database  # noqa: E402

QUEUE_PREFIX = "fcjob-"
HISTORY_PER_QUEUE = 5000

LOAD_OPEN_SQL = """
INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
    escalation_level, required_skills, variables, form_fields, created_at, updated_at, task_definition_key,
    delegation_state, due_date)
SELECT 'fc ' || g, '', q.name, ARRAY[q.name], 'OPEN', (g * 7919) %% 101, 0, '{}', '{}', '[]', c.at, now(),
       (ARRAY['review', 'check', 'approve'])[1 + g %% 3], '', c.at + make_interval(hours => (4 + (g * 31) %% 68)::int)
  FROM generate_series(1::bigint, %(tasks)s) AS g
  CROSS JOIN LATERAL (SELECT (%(queues)s::text[])[1 + g %% %(queue_count)s] AS name) q
  CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (g * 104729) %% 259200) AS at) c
"""

LOAD_HISTORY_SQL = """
INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
    escalation_level, required_skills, variables, form_fields, created_at, updated_at, task_definition_key,
    delegation_state, assignee_id, claimed_at, completed_at)
SELECT 'fc done ' || g, '', q.name, ARRAY[q.name], 'COMPLETED', (g * 7919) %% 101, 0, '{}', '{}', '[]',
       d.done - make_interval(mins => (30 + (g * 37) %% 600)::int), now(),
       (ARRAY['review', 'check', 'approve'])[1 + g %% 3], '', %(user)s,
       d.done - make_interval(mins => (5 + (g * 53) %% 180)::int), d.done
  FROM generate_series(1::bigint, %(tasks)s) AS g
  CROSS JOIN LATERAL (SELECT (%(queues)s::text[])[1 + g %% %(queue_count)s] AS name) q
  CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (g * 7907) %% 2419200) AS done) d
"""

WRITES_SQL = """
SELECT coalesce(n_tup_ins + n_tup_upd + n_tup_del, 0) FROM pg_stat_user_tables
 WHERE schemaname = 'flowable' AND relname = 'task_risks'
"""


def load(bench: Bench, tasks: int) -> float:
    import psycopg

    started = time.monotonic()
    with psycopg.connect(bench.database_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(
                "DELETE FROM flowable.task_history WHERE task_id IN "
                "(SELECT task_id FROM flowable.workflow_tasks WHERE queue_name = ANY(%s))",
                [bench.queues],
            )
            conn.execute("DELETE FROM flowable.workflow_tasks WHERE queue_name = ANY(%s)", [bench.queues])
            conn.execute("DELETE FROM flowable.task_risks WHERE queue_name = ANY(%s)", [bench.queues])
            params = {"queues": bench.queues, "queue_count": len(bench.queues), "user": bench.user_id}
            conn.execute(LOAD_OPEN_SQL, {**params, "tasks": tasks})
            conn.execute(LOAD_HISTORY_SQL, {**params, "tasks": HISTORY_PER_QUEUE * len(bench.queues)})
        for table in ("flowable.workflow_tasks", "flowable.task_risks"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return time.monotonic() - started


def reopen(bench: Bench) -> None:
    import psycopg

    with psycopg.connect(bench.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE flowable.workflow_tasks SET status = 'OPEN', assignee_id = NULL, claimed_at = NULL "
            "WHERE queue_name = ANY(%s) AND status = 'CLAIMED'",
            [bench.queues],
        )
        conn.execute("DELETE FROM flowable.task_history WHERE actor_id = %s", [bench.user_id])
        conn.execute("UPDATE queues.workflow_queues SET current_load = 0 WHERE queue_name = ANY(%s)", [bench.queues])
        conn.execute("VACUUM ANALYZE flowable.workflow_tasks")


def claims_per_second(bench: Bench, seconds: float) -> float:
    import psycopg

    with psycopg.connect(bench.database_url, autocommit=True) as conn:
        params = {"queues": bench.queues, "user_id": bench.user_id, "skills": []}

        def claim():
            row = conn.execute(FUNCTION_CLAIM_SQL, params).fetchone()
            return row[0] if row else None

        result = claim_for(seconds, claim)
    if result.errors:
        raise SystemExit(f"claims failed: {result.errors[0]}")
    return len(result.task_ids) / (result.ended - result.started)


def job_child() -> None:
    """In the child: run the job once, print its figures as JSON."""
    from entitlements.row_scope import system_scope
    from tasks.forecast.services import task_risks_refresh

    started = time.monotonic()
    with system_scope():
        refresh = task_risks_refresh()
    print(
        json.dumps(
            {
                "seconds": time.monotonic() - started,
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "tasks": refresh.tasks,
                "queues": refresh.queues,
            }
        )
    )


def run_job(database_url: str) -> dict:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        writes = conn.execute(WRITES_SQL).fetchone()[0]
    child = subprocess.run(
        [sys.executable, __file__, "--database-url", database_url, "--job-child"],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode:
        raise SystemExit(f"the job failed:\n{child.stderr}")
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    time.sleep(1.5)  # statistics reach pg_stat_user_tables within a second of the job's end
    with psycopg.connect(database_url, autocommit=True) as conn:
        figures["wal_bytes"] = float(
            conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [lsn]).fetchone()[0]
        )
        figures["rows_written"] = conn.execute(WRITES_SQL).fetchone()[0] - writes
    return figures


def describe(label: str, figures: dict) -> str:
    return (
        f"{label}: {figures['seconds']:.1f} s, peak RSS {figures['max_rss_mb']:.0f} MB, {figures['tasks']:,} tasks "
        f"forecast, {figures['rows_written']:,} rows written, WAL {figures['wal_bytes'] / 1e6:.1f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--once", action="store_true", help="stop after the first run of the job")
    parser.add_argument("--job-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job_child:
        django_setup(args.database_url)
        job_child()
        return 0

    ensure_database(args.database_url)
    django_setup(args.database_url)
    import io

    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("seed_demo", password="bench-" + os.urandom(6).hex(), stdout=io.StringIO())
    queues, user_id, token = ensure_bench_queues_and_user(
        queue_count=args.queues, capacity=args.tasks, prefix=QUEUE_PREFIX, username="fcjob", role_code="fcjob"
    )
    bench = Bench(database_url=args.database_url, queues=queues, user_id=user_id, token=token, port=0)
    import psycopg

    with psycopg.connect(args.database_url) as conn:
        loaded = conn.execute(
            "SELECT count(*) FROM flowable.workflow_tasks WHERE queue_name = ANY(%s) AND status = 'OPEN'", [queues]
        ).fetchone()[0]
    if args.reload or loaded != args.tasks:
        print(f"loading {args.tasks:,} OPEN tasks and {HISTORY_PER_QUEUE * len(queues):,} completed ones …", flush=True)
        print(f"loaded in {load(bench, args.tasks):.0f} s")
    reopen(bench)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM flowable.task_risks")
        conn.execute("VACUUM ANALYZE flowable.task_risks")

    alone = claims_per_second(bench, args.seconds)
    reopen(bench)
    print(f"claim-next alone: {alone:.0f}/s", flush=True)
    first = run_job(args.database_url)
    print(describe("job, first run (empty task_risks)", first), flush=True)
    if args.once:
        return 0

    beside: dict = {}
    thread = threading.Thread(target=lambda: beside.update(run_job(args.database_url)))
    thread.start()
    time.sleep(2.0)  # the child has set Django up and is reading
    during = claims_per_second(bench, args.seconds)
    thread.join()
    reopen(bench)
    print(f"claim-next beside the job: {during:.0f}/s ({during / alone:.0%} of alone)")
    print(describe("job, second run (claims ran meanwhile)", beside), flush=True)
    third = run_job(args.database_url)
    print(describe("job, third run (nothing changed)", third), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
