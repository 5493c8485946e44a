"""Task list API benchmark: GET /api/workflow/tasks/ for a caller whose queues hold a million tasks.

Uses claim.py's backlog (default 1,000,000 OPEN tasks in 20 queues, loaded if the bench database holds another
number) and its claimer, whose role reaches exactly those queues. Times, in-process through the WSGI handler
with the claimer's API token (no network; the server's whole work: authentication, access, filters, count, page,
serialization), after two warm-ups, --repeat times each:

  page 1        GET /api/workflow/tasks/                   (default order: priority DESC, created_at, id)
  open          GET /api/workflow/tasks/?status=OPEN
  page 100      GET /api/workflow/tasks/?cursor=... (the cursor of the row before the 100th page)
  one queue     GET /api/workflow/tasks/?queue=bench-00&status=OPEN

and, as the baseline in the same run, the two statements such a page needs at least, by psycopg with the queue
names written in: the count and the 50 rows of the page (`WHERE queue_name = ANY(...) ORDER BY ... LIMIT 50
OFFSET ...`). It prints p50/p95 in milliseconds, the ratio of the API's p50 to the baseline's, and the query count.

    .venv/bin/python bench/task_list.py
    .venv/bin/python bench/task_list.py --tasks 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys

import claim  # noqa: E402  (bench/ is on sys.path when run)
import psycopg
from common import django_setup, ensure_database, timed_ms, wsgi_get  # noqa: E402
from psycopg import sql

PAGE_SIZE = 50


def p(samples: list[float], fraction: float) -> float:
    return samples[min(len(samples) - 1, int(round(fraction * (len(samples) - 1))))]


def late_page_query(offset: int, queues: list[str]) -> str:
    """The list pages by cursor (no page numbers): the cursor of the row just before `offset` in the list's order."""
    from types import SimpleNamespace

    from core.pagination import KeysetList
    from tasks.api import TASK_LIST_ORDERING
    from tasks.models import WorkflowTask

    row = (
        WorkflowTask.objects.filter(queue_id__in=queues)
        .order_by(*TASK_LIST_ORDERING)
        .values("priority", "created_at", "task_id")[offset - 1]
    )
    return "cursor=" + KeysetList(WorkflowTask.objects.all(), ordering=TASK_LIST_ORDERING).cursor_for(
        SimpleNamespace(**row), backward=False
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tasks", type=int, default=1_000_000, help="OPEN tasks in the claimer's queues (default 1,000,000)"
    )
    parser.add_argument("--queues", type=int, default=20, help="bench queues (default 20)")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per case (default 10)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", claim.DEFAULT_DATABASE_URL))
    args = parser.parse_args(argv)
    if args.tasks < PAGE_SIZE * 100 or args.repeat < 1:
        parser.error(f"--tasks must be at least {PAGE_SIZE * 100} (page 100 must exist) and --repeat at least 1")

    ensure_database(args.database_url)
    os.environ.setdefault("DEBUG", "false")
    django_setup(args.database_url)
    claim.ensure_schema_and_demo(demo_password=secrets.token_urlsafe(12))
    queues, user_id, token = claim.ensure_bench_queues_and_user(queue_count=args.queues, capacity=args.tasks)
    bench = claim.Bench(database_url=args.database_url, queues=queues, user_id=user_id, token=token, port=0)
    if claim.bench_task_count(bench) != args.tasks:
        seconds = claim.load_backlog(bench, args.tasks)
        print(f"loaded {args.tasks:,} OPEN tasks into {len(queues)} queues in {seconds:.1f} s")
    else:
        claim.reset_backlog(bench)

    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    application = get_wsgi_application()

    order = "ORDER BY priority DESC, created_at, task_id"
    cases = [
        ("page 1", "", "", 0, queues),
        ("open", "status=OPEN", "AND status = 'OPEN'", 0, queues),
        ("page 100", late_page_query(99 * PAGE_SIZE, queues), "", 99 * PAGE_SIZE, queues),
        ("one queue", f"queue={queues[0]}&status=OPEN", "AND status = 'OPEN'", 0, queues[:1]),
    ]
    raw = psycopg.connect(args.database_url, autocommit=True)
    print(f"{args.tasks:,} OPEN tasks in {len(queues)} queues; in-process, p50/p95 of {args.repeat} runs, ms")
    print(f"{'case':<11}{'API p50':>9}{'p95':>8}{'queries':>9}{'SQL p50':>9}{'p95':>8}{'API ÷ SQL':>11}")
    for label, query, condition, offset, names in cases:
        status, body = wsgi_get(application, token, "/api/workflow/tasks/", query)
        if status != 200 or len(json.loads(body)["results"]) != PAGE_SIZE:
            print(f"{label}: HTTP {status} {body[:200]!r}", file=sys.stderr)
            return 1
        statements = []
        with connection.execute_wrapper(lambda execute, *a: statements.append(1) or execute(*a)):
            wsgi_get(application, token, "/api/workflow/tasks/", query)
        api = timed_ms(lambda: wsgi_get(application, token, "/api/workflow/tasks/", query), args.repeat)

        in_scope = sql.SQL("queue_name IN ({}) {}").format(
            sql.SQL(", ").join(sql.Literal(name) for name in names), sql.SQL(condition)
        )

        def baseline():
            raw.execute(sql.SQL("SELECT count(*) FROM flowable.workflow_tasks WHERE {}").format(in_scope)).fetchone()
            raw.execute(
                sql.SQL("SELECT * FROM flowable.workflow_tasks WHERE {} {} LIMIT {} OFFSET {}").format(
                    in_scope, sql.SQL(order), PAGE_SIZE, offset
                )
            ).fetchall()

        plain = timed_ms(baseline, args.repeat)
        print(
            f"{label:<11}{p(api, 0.5):>9.0f}{p(api, 0.95):>8.0f}{len(statements):>9}"
            f"{p(plain, 0.5):>9.0f}{p(plain, 0.95):>8.0f}{statistics.median(api) / statistics.median(plain):>11.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
