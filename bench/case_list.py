"""Case list benchmark: GET /api/cases/ and the /cases/ page, page 1 and a late page by cursor, for a caseworker who
sees every one of N cases and one who sees a fifth, under row-level security, against the page's SQL.

Generates --cases cases (default 1,000,000) in its own database with the generator of the case-scope plan tests
(every case passes intake and triage; 20 % reach fraud-investigation, 1 % legal-review, 2 % escalations; one
process instance, one mapping and one task per queue reached, OPEN in the last), as the superuser. Then, connected
as workflow_app (row-level security applies, every request in its user's row scope, as shipped), it times in-process
through the WSGI handler, the process set up as a gunicorn worker serves (common.as_a_worker_serves), for the demo
caseworkers alice (intake, triage: every case) and bob (fraud-investigation: a fifth):

  api    GET /api/cases/ with the caller's API token
  page   GET /cases/ with the caller's session

each on page 1 and on a late page (the cursor half-way down the cases, as the `next` links lead there), against two
baselines measured in the same rounds, by psycopg:

  sql       the page's statement (cases newest first from the cursor, each tested by
            onecms.case_has_task_in_queues, LIMIT page + 1) as the superuser in the system scope: no row-level
            security, one round trip
  sql+rls   the same statement as workflow_app in the caller's row scope, as a request sends it: BEGIN,
            entitlements.row_scope_set, the statement, COMMIT; what the policies and the scope add

And one case half-way down that both may open (its work reached fraud-investigation), as a caseworker opens it from
the list:

  api    GET /api/cases/<id>/ (the case with its subjects and workflows, decrypted; the read recorded in the audit)
  page   GET /cases/<id>/ (the case, its current tasks, subjects and routing timeline; the read recorded)
  sql    the case's row by key, its mappings and their active tasks, as the superuser: what the page shows at least

Every round times one request of each kind in turn (so a drift of the machine's speed hits all alike); it prints
p50 and p95 in milliseconds over --repeat rounds after a warm-up, and the issue's target (the lists' API and page
p95 < 20 ms; the case itself is printed beside them, outside the issue's list of pages).

    createdb -U postgres -O workflow_owner casescope_bench      # once the roles exist
    eval "$(.venv/bin/python manage.py create_database_roles --owner-createdb --database casescope_bench --print-env)"
    .venv/bin/python bench/case_list.py                     # generates 1M cases once (about 4 minutes)
    .venv/bin/python bench/case_list.py --cases 100000 --repeat 20
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from base64 import b64encode

import psycopg
import psycopg.conninfo
from common import as_a_worker_serves, django_setup, wsgi_request  # noqa: E402  (bench/ is on sys.path when run)

CASEWORKERS = (("alice", "every case"), ("bob", "a fifth"))
TARGET_P95_MS = 20.0
WARM_UPS = 3

PAGE_SQL = """
SELECT c.* FROM onecms.cases c
 WHERE (c.assigned_to_id = %(user)s OR c.created_by_id = %(user)s
        OR onecms.case_has_task_in_queues(c.case_id, %(queues)s::text[]))
   AND c.case_id < %(before)s
 ORDER BY c.case_id DESC LIMIT %(limit)s
"""


CASE_SQL = (
    "SELECT c.* FROM onecms.cases c WHERE c.case_id = %(case)s",
    "SELECT m.* FROM onecms.case_workflow_mapping m WHERE m.case_id = %(case)s ORDER BY m.mapping_id",
    "SELECT t.* FROM flowable.workflow_tasks t JOIN onecms.case_workflow_mapping m USING (process_instance_id)"
    " WHERE m.case_id = %(case)s AND t.status IN ('OPEN', 'CLAIMED', 'ESCALATED') ORDER BY t.task_id",
)
ONE_CASE = "one case"


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def ensure_cases(admin_url: str, count: int) -> None:
    from tests.cases.test_case_scope_plans import GENERATE_CASES_SQL

    with psycopg.connect(admin_url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM onecms.cases WHERE case_number LIKE 'GEN-%'").fetchone()[0]
        if have == count:
            print(f"reusing the {count:,} generated cases")
            return
        if have:
            raise SystemExit(
                f"the bench database holds {have:,} generated cases, not {count:,}: drop it or use another"
            )
        started = time.monotonic()
        bob = conn.execute("SELECT id FROM entitlements.users WHERE username = 'bob'").fetchone()[0]
        conn.execute("SET statement_timeout = 0")
        conn.execute(GENERATE_CASES_SQL, {"count": count, "assignee": bob, "creator": bob})
        conn.execute("VACUUM ANALYZE")
        print(f"generated {count:,} cases in {time.monotonic() - started:.0f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="generated cases (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=50, help="timed rounds (default 50)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_APP_URL"), help="as workflow_app")
    parser.add_argument("--owner-url", default=os.environ.get("DATABASE_MIGRATE_URL"), help="as workflow_owner")
    parser.add_argument(
        "--admin-url", default=os.environ.get("DATABASE_ADMIN_URL"), help="a superuser (its database name is replaced)"
    )
    args = parser.parse_args(argv)
    if not (args.database_url and args.owner_url and args.admin_url):
        parser.error("give the three URLs, or eval `manage.py create_database_roles --database ... --print-env`")
    if args.cases < 10_000 or args.repeat < 2:
        parser.error("--cases must be at least 10,000 and --repeat at least 2")
    name = psycopg.conninfo.conninfo_to_dict(args.database_url)["dbname"]
    admin_url = psycopg.conninfo.make_conninfo(args.admin_url, dbname=name)

    os.environ["DEBUG"] = "false"  # no query log
    os.environ["DATABASE_MIGRATE_URL"] = args.owner_url
    django_setup(args.database_url)
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.test import Client

    from cases.pagination import LIST_PAGE_SIZE
    from entitlements.access import queue_names_for
    from entitlements.models import Capability, User
    from entitlements.services import api_token_create

    call_command("migrate", interactive=False, verbosity=0)
    call_command("seed_demo", password=secrets.token_urlsafe(12), stdout=open(os.devnull, "w"))  # noqa: SIM115
    ensure_cases(admin_url, args.cases)

    application = get_wsgi_application()
    admin = psycopg.connect(admin_url, autocommit=True)
    # The walk's test counts the queues of the acting scope (cases/sql/case_has_task_in_queues.sql): the system's.
    admin.execute("SELECT set_config('workflow.scope', 'system', false)")
    app = psycopg.connect(args.database_url)
    newest, late = admin.execute(
        "SELECT max(case_id), (SELECT case_id FROM onecms.cases ORDER BY case_id DESC OFFSET %s LIMIT 1) "
        "FROM onecms.cases",
        [args.cases // 2],
    ).fetchone()
    # Half-way down, a case whose work reached fraud-investigation: alice's queues and bob's reach it.
    (shared_case,) = admin.execute(
        "SELECT m.case_id FROM onecms.case_workflow_mapping m JOIN flowable.workflow_tasks t USING (process_instance_id)"
        " WHERE t.queue_name = 'fraud-investigation' AND m.case_id <= %s ORDER BY m.case_id DESC LIMIT 1",
        [late],
    ).fetchone()

    def rls_page(user_id: int, params: dict) -> None:
        with app.transaction():
            app.execute("SELECT entitlements.row_scope_set(%s, '')", [user_id])
            app.execute(PAGE_SQL, params).fetchall()

    cells: dict[tuple[str, str, str], list[float]] = {}
    runs = {}
    for username, _ in CASEWORKERS:
        user = User.objects.get(username=username)
        token = api_token_create(user=user).key
        client = Client()
        client.force_login(user)
        cookie = {"HTTP_COOKIE": f"sessionid={client.cookies['sessionid'].value}", "HTTP_ACCEPT": "text/html"}
        queues = queue_names_for(user=user, capability=Capability.VIEW)
        for label, before in (("page 1", None), ("late page", late)):
            query = f"cursor={b64encode(f'p={before}'.encode()).decode()}" if before else ""
            params = {"user": user.pk, "queues": queues, "before": (before or newest + 1), "limit": LIST_PAGE_SIZE + 1}
            runs[(username, label, "api")] = lambda token=token, query=query: wsgi_request(
                application, token, "/api/cases/", query
            )
            runs[(username, label, "page")] = lambda cookie=cookie, query=query: wsgi_request(
                application, "", "/cases/", query, headers=cookie
            )
            runs[(username, label, "sql")] = lambda params=params: admin.execute(PAGE_SQL, params).fetchall()
            runs[(username, label, "sql+rls")] = lambda user_id=user.pk, params=params: rls_page(user_id, params)
        case_path = f"/cases/{shared_case}/"
        runs[(username, ONE_CASE, "api")] = lambda token=token: wsgi_request(application, token, "/api" + case_path)
        runs[(username, ONE_CASE, "page")] = lambda cookie=cookie: wsgi_request(
            application, "", case_path, headers=cookie
        )
        runs[(username, ONE_CASE, "sql")] = lambda: [
            admin.execute(statement, {"case": shared_case}).fetchall() for statement in CASE_SQL
        ]
    for key, run in runs.items():
        for _ in range(WARM_UPS):
            result = run()
            if key[2] in ("api", "page") and result[0] != 200:
                print(f"{key}: HTTP {result[0]} {result[1][:300]!r}", file=sys.stderr)
                return 1
    as_a_worker_serves()
    for _ in range(args.repeat):
        for key, run in runs.items():
            started = time.perf_counter()
            run()
            cells.setdefault(key, []).append((time.perf_counter() - started) * 1000.0)

    print(f"{args.cases:,} generated cases; in-process, as workflow_app under row-level security; {args.repeat} rounds")
    print(f"{'caller':<20}{'page':<11}{'path':<9}{'p50 ms':>8}{'p95 ms':>8}{'p50 ÷ sql':>11}")
    missed = []
    for username, sees in CASEWORKERS:
        for label in ("page 1", "late page", ONE_CASE):
            baseline = statistics.median(cells[(username, label, "sql")])
            for path in ("sql", "sql+rls", "api", "page"):
                if (samples := cells.get((username, label, path))) is None:
                    continue
                p50, p95 = statistics.median(samples), percentile(samples, 0.95)
                caller = f"{username} ({sees})"
                print(f"{caller:<20}{label:<11}{path:<9}{p50:>8.1f}{p95:>8.1f}{p50 / baseline:>11.1f}")
                if label != ONE_CASE and path in ("api", "page") and p95 >= TARGET_P95_MS:
                    missed.append(f"{username} {label} {path} p95 {p95:.1f} ms")
    print(
        f"target p95 < {TARGET_P95_MS:.0f} ms (the lists' API and page): "
        + ("met" if not missed else "missed: " + "; ".join(missed))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
