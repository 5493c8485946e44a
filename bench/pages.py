"""Pages and lists benchmark: what people open first, at 1M and 10M tasks, each against its baseline SQL.

For each size (default 1,000,000 and 10,000,000) a user (`bench-pages-1m`, `bench-pages-10m`, work rights) reaches
20 queues of its own (`pages-1m-00`…) that hold that many tasks, all in the one task table (11M rows by default),
loaded by `INSERT … SELECT generate_series` as the superuser: 60 % COMPLETED, 25 % OPEN, 10 % CLAIMED, 5 %
CANCELLED, priorities 0–100, created over 30 days, a third with a due date within ±5 days. A scope already loaded
is kept; loading a few million rows drops the task table's secondary indexes and builds them again afterwards
(much quicker than updating eleven indexes row by row), then runs VACUUM ANALYZE and refreshes the dashboards
(flowable.mv_queue_performance, which GET /api/queues/ reads).

Each page in PAGES is timed in-process through the WSGI handler (the server's whole work: authentication, access,
row scope, queries, rendering) as `workflow_app` under row-level security, the process set up as a gunicorn worker
serves (common.as_a_worker_serves: the start-up objects frozen out of the cyclic collector), run by run alternating
between the sizes and, within each, with its baseline: the statements the page needs at least, written by hand
and sent by psycopg as the superuser (no Django, no row-level security). Interleaved so that a shared machine's
drift falls on every figure alike, it prints p50/p95 per size and the ratio of the largest size's p95 to the smallest's.
Beside the issue's pages it opens one open task of each scope (`/tasks/<id>/` and the API's
`/api/workflow/tasks/<id>/`, against the task's row and history by key), what a caseworker opens from the queue
page; they are printed, not counted in the target. A page spec is a name, a request and its baseline; another list
(the case list, say) adds its specs to PAGES, or builds a list of its own and calls `measure_pages` with its
contexts.

    eval "$(.venv/bin/python manage.py create_database_roles --owner-createdb --database pages_bench --print-env)"
    .venv/bin/python bench/pages.py                                  # 1M and 10M tasks (loading 10M: ~15 min)
    .venv/bin/python bench/pages.py --sizes 100000,200000 --repeat 20   # smoke
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import claim  # noqa: E402  (bench/ is on sys.path when run)
import psycopg
import psycopg.conninfo
from common import as_a_worker_serves, django_setup, wsgi_request  # noqa: E402

QUEUE_PREFIX = "pages-"
BENCH_USER = "bench-pages"
BENCH_ROLE = "bench-pages"
PAGE_SIZE = 50
COUNT_CAP = 2_000
CREATED_AT_SPREAD_SECONDS = 30 * 24 * 3600
# Loads of at least this many rows drop and rebuild the task table's secondary indexes.
REBUILD_INDEXES_FROM = 500_000
TARGET_P95_MS = 20.0
TARGET_GROWTH = 1.3
STATUSES = ("OPEN", "CLAIMED", "COMPLETED", "ESCALATED", "CANCELLED")

LOAD_SQL = """
INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
    escalation_level, required_skills, variables, form_fields, created_at, updated_at, task_definition_key,
    delegation_state, assignee_id, claimed_at, completed_at, due_date)
SELECT 'bench ' || g, '', q.name, ARRAY[q.name], s.status, (g * 7919) %% 101, 0, '{}', '{}', '[]',
       now() - make_interval(secs => (g * 104729) %% %(spread)s), now(), '', '',
       CASE WHEN s.status = 'CLAIMED' THEN %(user_id)s END,
       CASE WHEN s.status = 'CLAIMED' THEN now() END,
       CASE WHEN s.status = 'COMPLETED' THEN now() END,
       CASE WHEN g %% 3 = 0 THEN now() + make_interval(hours => ((g * 31) %% 240)::int - 120) END
  FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
  CROSS JOIN LATERAL (SELECT (%(queues)s::text[])[1 + (g / 20) %% %(queue_count)s] AS name) q
  CROSS JOIN LATERAL (SELECT CASE WHEN g %% 20 < 12 THEN 'COMPLETED' WHEN g %% 20 < 17 THEN 'OPEN'
                                  WHEN g %% 20 < 19 THEN 'CLAIMED' ELSE 'CANCELLED' END AS status) s
"""

# --- baselines: the statements a page needs at least -----------------------------------------------------------

ORDER = "priority DESC, created_at, task_id"


def probes_sql(statuses: list[str], after: tuple | None) -> str:
    """The page's rows: one ordered probe per queue and status of the (queue, status, priority, created_at,
    task_id) index, merged; after a cursor, the rows past it (two probes: the rest of its priority, then lower)."""
    status_list = ", ".join(f"'{status}'" for status in statuses)
    probe = (
        "SELECT t.task_id, t.priority, t.created_at FROM flowable.workflow_tasks t "
        "WHERE t.queue_name = q.name AND t.status = s.status {condition} ORDER BY t.{order} LIMIT 51"
    )
    if after is None:
        merged = probe.format(condition="", order=ORDER.replace(", ", ", t."))
    else:
        priority, created_at, task_id = after
        same = probe.format(
            condition=f"AND t.priority = {priority} AND (t.created_at, t.task_id) > ('{created_at.isoformat()}', "
            f"{task_id})",
            order=ORDER.replace(", ", ", t."),
        )
        lower = probe.format(condition=f"AND t.priority < {priority}", order=ORDER.replace(", ", ", t."))
        merged = f"SELECT * FROM (({same}) UNION ALL ({lower})) u ORDER BY {ORDER} LIMIT 51"
    return (
        "SELECT w.* FROM flowable.workflow_tasks w WHERE w.task_id IN ("
        "SELECT m.task_id FROM unnest(%(queues)s::text[]) AS q(name) "
        f"CROSS JOIN unnest(ARRAY[{status_list}]) AS s(status) CROSS JOIN LATERAL ({merged}) m "
        f"ORDER BY m.{ORDER.replace(', ', ', m.')} LIMIT 51)"
    )


def capped_count_sql(statuses: list[str]) -> str:
    status_list = ", ".join(f"'{status}'" for status in statuses)
    return (
        "SELECT count(*) FROM (SELECT 1 FROM unnest(%(queues)s::text[]) AS q(name) "
        f"CROSS JOIN unnest(ARRAY[{status_list}]) AS s(status) CROSS JOIN LATERAL ("
        "SELECT 1 FROM flowable.workflow_tasks t WHERE t.queue_name = q.name AND t.status = s.status "
        f"LIMIT {COUNT_CAP + 1}) m LIMIT {COUNT_CAP + 1}) c"
    )


QUEUE_FIGURES_SQL = "SELECT * FROM flowable.mv_queue_performance WHERE queue_name = ANY(%(queues)s::text[])"
# One task: its row and its history, by key.
TASK_SQL = (
    "SELECT t.* FROM flowable.workflow_tasks t WHERE t.task_id = %(task)s",
    "SELECT h.* FROM flowable.task_history h WHERE h.task_id = %(task)s ORDER BY h.created_at",
)


# --- page specs ---------------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What a spec needs to build its request and baseline: the handler, credentials, the queues, a psycopg
    connection as the superuser, and a key in the middle of the task list (for a late page)."""

    application: object
    token: str
    session_headers: dict
    queues: list[str]
    raw: psycopg.Connection
    middle_key: tuple
    middle_cursor: str
    task_id: int = 0  # an open task some way down the first queue: the one task the task pages open


@dataclass(frozen=True)
class PageSpec:
    name: str
    path: str  # "{task}" is the context's task_id
    query: Callable[[Context], str] = lambda context: ""
    session: bool = False  # a page (session cookie) rather than the API (token)
    baseline: tuple[str, ...] = ()  # statements, %(queues)s, %(first_queue)s and %(task)s filled in
    baseline_for: Callable[[Context], tuple[str, ...]] | None = None
    in_target: bool = True  # one of the pages (p95 < 20 ms at the smallest size, growth ≤ 1.3)

    def statements(self, context: Context) -> tuple[str, ...]:
        return self.baseline_for(context) if self.baseline_for else self.baseline

    def path_for(self, context: Context) -> str:
        return self.path.replace("{task}", str(context.task_id))


PAGES: list[PageSpec] = [
    PageSpec(
        "/inbox/queues/",
        "/inbox/queues/",
        session=True,
        baseline=(probes_sql(["OPEN"], None), capped_count_sql(["OPEN"])),
    ),
    PageSpec(
        "tasks API page 1",
        "/api/workflow/tasks/",
        baseline=(probes_sql(list(STATUSES), None), capped_count_sql(list(STATUSES))),
    ),
    PageSpec(
        "tasks API late page",
        "/api/workflow/tasks/",
        query=lambda context: f"cursor={context.middle_cursor}",
        baseline_for=lambda context: (
            probes_sql(list(STATUSES), context.middle_key),
            capped_count_sql(list(STATUSES)),
        ),
    ),
    PageSpec(
        "tasks API ?status=OPEN",
        "/api/workflow/tasks/",
        query=lambda context: "status=OPEN",
        baseline=(probes_sql(["OPEN"], None), capped_count_sql(["OPEN"])),
    ),
    PageSpec(
        "tasks API ?queue=one",
        "/api/workflow/tasks/",
        query=lambda context: f"queue={context.queues[0]}",
        baseline_for=lambda context: tuple(
            statement.replace("%(queues)s", "%(first_queue)s")
            for statement in (probes_sql(list(STATUSES), None), capped_count_sql(list(STATUSES)))
        ),
    ),
    PageSpec("/api/queues/", "/api/queues/", baseline=(QUEUE_FIGURES_SQL,)),
    # What a caseworker opens from the queue page: one task (outside the list of pages, measured beside it).
    PageSpec("/tasks/<id>/", "/tasks/{task}/", session=True, baseline=TASK_SQL, in_target=False),
    PageSpec("tasks API one task", "/api/workflow/tasks/{task}/", baseline=TASK_SQL, in_target=False),
]


@dataclass
class Figures:
    page: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    queries: int = 0


def p(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure_pages(contexts: dict[int, Context], pages: list[PageSpec], repeat: int, warm_ups: int = 5):
    """Each page `repeat` times at each size, the sizes and the page and its baseline alternating run by run;
    {size: {page name: Figures}}."""
    from django.db import connection

    results = {size: {} for size in contexts}
    for spec in pages:
        runs = []
        for size, context in contexts.items():
            runs.append((size, *runners(spec, context)))
        for size, page, baseline in runs:
            for _ in range(warm_ups):
                page()
                baseline()
            counted = []
            with connection.execute_wrapper(lambda execute, *a: counted.append(1) or execute(*a)):
                page()
            results[size][spec.name] = Figures(queries=len(counted))
        for _ in range(repeat):
            for size, page, baseline in runs:
                figures = results[size][spec.name]
                for function, samples in ((page, figures.page), (baseline, figures.baseline)):
                    started = time.perf_counter()
                    function()
                    samples.append((time.perf_counter() - started) * 1000.0)
    return results


def runners(spec: PageSpec, context: Context):
    """The page's request and its baseline, as functions of no arguments."""
    query = spec.query(context)
    headers = context.session_headers if spec.session else None
    token = "" if spec.session else context.token
    params = {"queues": context.queues, "first_queue": context.queues[:1], "task": context.task_id}
    statements = spec.statements(context)
    path = spec.path_for(context)

    def page():
        status, body = wsgi_request(context.application, token, path, query, headers=headers)
        if status != 200:
            raise SystemExit(f"{spec.name}: HTTP {status} {body[:300]!r}")

    def baseline():
        for statement in statements:
            context.raw.execute(statement, params).fetchall()

    return page, baseline


def print_figures(size: int, results: dict[str, Figures]) -> None:
    print(f"\n{size:,} tasks in the caller's queues; in-process, ms over {len(next(iter(results.values())).page)} runs")
    print(f"{'page':<24}{'p50':>7}{'p95':>7}{'queries':>9}{'SQL p50':>9}{'p95':>7}{'p95 ÷ SQL':>11}")
    for name, figures in results.items():
        print(
            f"{name:<24}{p(figures.page, 0.5):>7.1f}{p(figures.page, 0.95):>7.1f}{figures.queries:>9}"
            f"{p(figures.baseline, 0.5):>9.1f}{p(figures.baseline, 0.95):>7.1f}"
            f"{p(figures.page, 0.95) / max(p(figures.baseline, 0.95), 0.001):>11.1f}"
        )


def print_growth(sizes: list[int], by_size: dict[int, dict[str, Figures]]) -> bool:
    small, large = sizes[0], sizes[-1]
    print(f"\n{large:,} ÷ {small:,} tasks (target: p95 < {TARGET_P95_MS:.0f} ms at {small:,}, ratio ≤ {TARGET_GROWTH})")
    print(f"{'page':<24}{'p50 ratio':>10}{'p95 ratio':>10}{'SQL p95 ratio':>14}  target")
    met = True
    in_target = {spec.name: spec.in_target for spec in PAGES}
    for name, figures in by_size[large].items():
        before = by_size[small][name]
        p50 = p(figures.page, 0.5) / p(before.page, 0.5)
        p95 = p(figures.page, 0.95) / p(before.page, 0.95)
        sql = p(figures.baseline, 0.95) / max(p(before.baseline, 0.95), 0.001)
        ok = p(before.page, 0.95) < TARGET_P95_MS and p95 <= TARGET_GROWTH
        if in_target.get(name, True):
            met = met and ok
            verdict = "met" if ok else "MISSED"
        else:
            verdict = "(beside the target)"
        print(f"{name:<24}{p50:>10.2f}{p95:>10.2f}{sql:>14.2f}  {verdict}")
    return met


# --- data ------------------------------------------------------------------------------------------------------------


def scope_label(size: int) -> str:
    """1000000 -> "1m", 200000 -> "200k": the name of a size's queues and user."""
    for step, suffix in ((1_000_000, "m"), (1_000, "k")):
        if size % step == 0:
            return f"{size // step}{suffix}"
    return str(size)


def bench_rows(admin_url: str, queues: list[str]) -> int:
    with psycopg.connect(admin_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM flowable.workflow_tasks WHERE queue_name = ANY(%s)", [queues]
        ).fetchone()[0]


def secondary_indexes(conn) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = 'flowable.workflow_tasks'::regclass AND NOT indisprimary AND NOT indisunique "
        "ORDER BY 1"
    ).fetchall()


def load(admin_url: str, queues: list[str], user_id: int, size: int) -> None:
    """Grow the bench queues' tasks to `size` rows (or reload them, when they hold more)."""
    present = bench_rows(admin_url, queues)
    if present == size:
        return
    started = time.monotonic()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if present > size:
            conn.execute(
                "DELETE FROM flowable.task_history WHERE task_id IN "
                "(SELECT task_id FROM flowable.workflow_tasks WHERE queue_name = ANY(%s))",
                [queues],
            )
            conn.execute("DELETE FROM flowable.workflow_tasks WHERE queue_name = ANY(%s)", [queues])
            present = 0
        indexes = secondary_indexes(conn) if size - present >= REBUILD_INDEXES_FROM else []
        for name, definition in indexes:
            print(f"dropping {name} for the load; rebuilt after it as: {definition}")
            conn.execute(f"DROP INDEX {name}")
        conn.execute(
            LOAD_SQL,
            {
                "first": present + 1,
                "last": size,
                "queues": queues,
                "queue_count": len(queues),
                "spread": CREATED_AT_SPREAD_SECONDS,
                "user_id": user_id,
            },
        )
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE flowable.workflow_tasks")
        conn.execute("SELECT flowable.dashboards_refresh()")
    print(f"loaded {size - present:,} tasks ({size:,} in the bench queues) in {time.monotonic() - started:.0f} s")


# --- main ----------------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1000000,10000000", help="task counts to measure at, ascending (default 1M,10M)"
    )
    parser.add_argument("--queues", type=int, default=20, help="bench queues (default 20)")
    parser.add_argument("--repeat", type=int, default=100, help="timed runs of each page and baseline")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_APP_URL"), help="as workflow_app")
    parser.add_argument("--owner-url", default=os.environ.get("DATABASE_MIGRATE_URL"), help="as workflow_owner")
    parser.add_argument(
        "--admin-url", default=os.environ.get("DATABASE_ADMIN_URL"), help="a superuser, for loading and baselines"
    )
    args = parser.parse_args(argv)
    if not (args.database_url and args.owner_url and args.admin_url):
        parser.error("give the three URLs, or eval `manage.py create_database_roles --database ... --print-env`")
    sizes = sorted(int(size) for size in args.sizes.split(","))
    name = psycopg.conninfo.conninfo_to_dict(args.database_url)["dbname"]
    admin_url = psycopg.conninfo.make_conninfo(args.admin_url, dbname=name)

    os.environ["DEBUG"] = "false"
    os.environ["DATABASE_MIGRATE_URL"] = args.owner_url
    django_setup(args.database_url)
    claim.ensure_schema_and_demo(demo_password=secrets.token_urlsafe(12))
    from django.core.wsgi import get_wsgi_application
    from django.test import Client

    from core.pagination import KeysetList
    from entitlements.models import User
    from tasks.api import TASK_LIST_ORDERING
    from tasks.models import WorkflowTask

    application = get_wsgi_application()
    raw = psycopg.connect(admin_url, autocommit=True)
    listing = KeysetList(WorkflowTask.objects.all(), ordering=TASK_LIST_ORDERING)
    # A key halfway down the list (priority 50, created 15 days ago): a late page, read after its cursor.
    middle = raw.execute("SELECT now() - make_interval(secs => %s)", [CREATED_AT_SPREAD_SECONDS // 2]).fetchone()[0]
    cursor = listing.cursor_for(SimpleNamespace(priority=50, created_at=middle, task_id=0), backward=False)

    contexts = {}
    for size in sizes:
        label = scope_label(size)
        queues, user_id, token = claim.ensure_bench_queues_and_user(
            queue_count=args.queues,
            capacity=size,
            prefix=f"{QUEUE_PREFIX}{label}-",
            username=f"{BENCH_USER}-{label}",
            role_code=f"{BENCH_ROLE}-{label}",
        )
        load(admin_url, queues, user_id, size)
        client = Client()
        client.force_login(User.objects.get(pk=user_id))
        session = {"HTTP_COOKIE": f"sessionid={client.cookies['sessionid'].value}", "HTTP_ACCEPT": "text/html"}
        (task_id,) = raw.execute(
            "SELECT task_id FROM flowable.workflow_tasks WHERE queue_name = %s AND status = 'OPEN'"
            " ORDER BY priority DESC, created_at, task_id OFFSET 500 LIMIT 1",
            [queues[0]],
        ).fetchone()
        contexts[size] = Context(application, token, session, queues, raw, (50, middle, 0), cursor, task_id)
    as_a_worker_serves()
    by_size = measure_pages(contexts, PAGES, args.repeat)
    for size in sizes:
        print_figures(size, by_size[size])
    if len(sizes) > 1:
        return 0 if print_growth(sizes, by_size) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
