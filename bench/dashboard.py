"""Supervisor console benchmark: server-side latency of the dashboard and the task changelist on N generated tasks.

Tops the bench database up to --tasks generated tasks in the demo queues (80 % completed over the last 30 days,
about 20 % open, 0.05 % claimed by alice, since CLAIMED tasks are bounded by the queues' capacity; 2 % escalated;
a third of the active ones overdue), VACUUM ANALYZEs, refreshes
the dashboard views (timed: that is the 15-minute job's cost), then times, in-process with Django's test client
(so no network, only the server's work), as the demo supervisor who supervises every queue:

  selector      tasks.console.dashboard.supervisor_dashboard(user=...)
  admin index   GET /admin/                         (the dashboard, its three SVG charts, the app list)
  changelist    GET /admin/tasks/workflowtask/      (capped count, newest 100 tasks)
  filtered      GET /admin/tasks/workflowtask/?queue__queue_name__exact=legal-review&status__exact=OPEN&overdue=yes
  metrics       the /metrics view

Each is run --repeat times after two warm-ups; it prints p50, p95 and max in milliseconds, and the query count.

    .venv/bin/python bench/dashboard.py --tasks 1000000
    .venv/bin/python bench/dashboard.py --tasks 10000000     # tops the same database up: about 10-15 minutes
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from common import django_setup, ensure_database  # noqa: E402  (bench/ is on sys.path when run)

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/dashboard_bench"
BATCH = 1_000_000
NAME_PREFIX = "dashboard bench "

GENERATE_SQL = """
INSERT INTO flowable.workflow_tasks
    (name, description, queue_name, candidate_groups, assignee_id, delegation_state, status, priority,
     due_date, escalation_level, required_skills, variables, form_fields, created_at, claimed_at, completed_at,
     updated_at, task_definition_key)
SELECT %(prefix)s || g, '', q.names[1 + g %% array_length(q.names, 1)], ARRAY[]::varchar[],
       CASE WHEN g %% 10 < 8 OR g %% 2000 = 9 THEN %(worker)s END, '',
       CASE WHEN g %% 10 < 8 THEN 'COMPLETED' WHEN g %% 2000 = 9 THEN 'CLAIMED' ELSE 'OPEN' END,
       (g * 7) %% 101,
       now() - interval '30 days' + (g %% 43200) * interval '1 minute' + (g %% 3) * interval '20 days',
       CASE WHEN g %% 50 = 0 THEN 1 ELSE 0 END, ARRAY[]::varchar[], '{}'::jsonb, '[]'::jsonb,
       now() - interval '30 days' + (g %% 43200) * interval '1 minute',
       CASE WHEN g %% 10 < 8 OR g %% 2000 = 9 THEN now() - interval '30 days' + (g %% 43200) * interval '1 minute' END,
       -- Completed (g %% 97) hours after creation; a task that would complete in the future completes instead
       -- at the same fraction of the time it has had, so completions spread over the day as real ones do rather
       -- than piling up at the moment of generation.
       CASE WHEN g %% 10 < 8 THEN now() - interval '30 days' + (g %% 43200) * interval '1 minute'
            + least((g %% 97) * interval '1 hour',
                    (interval '30 days' - (g %% 43200) * interval '1 minute') * ((g %% 97) / 97.0)) END,
       now(), ''
  FROM generate_series(%(first)s, %(last)s) g,
       (SELECT array_agg(queue_name ORDER BY queue_name) AS names FROM queues.workflow_queues) q
"""


def prepare(target: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    from entitlements.models import User
    from tasks.sla.maintenance import refresh_dashboards

    call_command("migrate", verbosity=0)
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", "--password", "bench-pass-123", "--no-workflows", stdout=quiet)
    worker = User.objects.get(username="alice").pk
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM flowable.workflow_tasks WHERE name LIKE %s", [NAME_PREFIX + "%"])
        have = cursor.fetchone()[0]
        started = time.perf_counter()
        first = have + 1
        while first <= target:
            last = min(first + BATCH - 1, target)
            cursor.execute(GENERATE_SQL, {"prefix": NAME_PREFIX, "worker": worker, "first": first, "last": last})
            print(f"  generated tasks {first:,}–{last:,} ({time.perf_counter() - started:.0f} s)", flush=True)
            first = last + 1
        if have < target:
            cursor.execute("VACUUM ANALYZE flowable.workflow_tasks")
        cursor.execute("SELECT count(*) FROM flowable.workflow_tasks")
        print(f"workflow_tasks holds {cursor.fetchone()[0]:,} rows")
    started = time.perf_counter()
    refresh_dashboards()
    print(f"refresh_dashboards (both materialized views, CONCURRENTLY): {time.perf_counter() - started:.2f} s")


def measure(label: str, call, repeat: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        call()
    timings = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            call()
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    print(
        f"{label:<13} p50 {statistics.median(timings):8.1f} ms   p95 {p95:8.1f} ms   max {timings[-1]:8.1f} ms"
        f"   {len(queries.captured_queries):3d} queries"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000, help="generated tasks to have (tops up, never deletes)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=os.environ.get("DASHBOARD_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    args = parser.parse_args()

    ensure_database(args.database_url)
    django_setup(args.database_url)
    prepare(args.tasks)

    from django.test import Client, RequestFactory

    from entitlements.models import User
    from tasks.console.dashboard import supervisor_dashboard
    from tasks.console.metrics import metrics

    supervisor = User.objects.get(username="supervisor")
    client = Client()
    client.force_login(supervisor)

    def get(url):
        def call():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return call

    scrape = RequestFactory().get("/metrics", REMOTE_ADDR="127.0.0.1")
    print(f"\nserver-side latency as {supervisor.get_username()} ({args.repeat} runs each):")
    measure("selector", lambda: supervisor_dashboard(user=supervisor), args.repeat)
    measure("admin index", get("/admin/"), args.repeat)
    measure("changelist", get("/admin/tasks/workflowtask/"), args.repeat)
    measure(
        "filtered",
        get("/admin/tasks/workflowtask/?queue__queue_name__exact=legal-review&status__exact=OPEN&overdue=yes"),
        args.repeat,
    )
    measure("metrics", lambda: metrics(scrape), args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
