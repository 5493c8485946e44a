"""Case list API benchmark: GET /api/cases/ for caseworkers whose queues reach most, or a fifth, of N cases.

Generates --cases cases (default 1,000,000) in its own database with the generator of the case-scope plan tests
(every case passes intake and triage; 20 % reach fraud-investigation, 1 % legal-review, 2 % escalations; one
process instance, one mapping and one task per queue reached, OPEN in the last), then times, in-process through
the WSGI handler with each caseworker's API token, page 1 and page 50 of GET /api/cases/ for the demo caseworkers
alice (intake, triage: sees every case) and bob (fraud-investigation: a fifth), --repeat times after a warm-up.

The baseline in the same run is the pair of statements such a page needs, by psycopg: the count and the page of the
scope read from its matches (the case ids of the caller's assigned, created and task-queue cases, newest first).
It prints p50 in milliseconds for the API, for the count and for the page.

    .venv/bin/python bench/case_list.py                       # generates 1M cases once (about 3 minutes)
    .venv/bin/python bench/case_list.py --cases 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

import psycopg
from common import django_setup, ensure_database, timed_ms, wsgi_get  # noqa: E402  (bench/ is on sys.path when run)

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/casescope_bench"
PAGE_SIZE = 50
CASEWORKERS = ("alice", "bob")

SCOPE_SQL = """
SELECT {columns} FROM onecms.cases c
 WHERE c.case_id IN ((SELECT case_id FROM onecms.cases WHERE assigned_to_id = %(user)s)
                     UNION ALL (SELECT case_id FROM onecms.cases WHERE created_by_id = %(user)s)
                     UNION ALL (SELECT m.case_id FROM onecms.case_workflow_mapping m
                                 WHERE m.process_instance_id IN (SELECT t.process_instance_id FROM flowable.workflow_tasks t
                                                                  WHERE t.queue_name = ANY(%(queues)s))))
 {tail}
"""


def p50_ms(function, repeat: int) -> float:
    return statistics.median(timed_ms(function, repeat, warm_ups=1))


def ensure_cases(count: int) -> None:
    from django.db import connection

    from entitlements.models import User
    from tests.cases.test_case_scope_plans import GENERATE_CASES_SQL

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM onecms.cases WHERE case_number LIKE 'GEN-%%'")
        have = cursor.fetchone()[0]
        if have == count:
            print(f"reusing the {count:,} generated cases")
            return
        if have:
            raise SystemExit(
                f"the bench database holds {have:,} generated cases, not {count:,}: drop it or use --database-url"
            )
        started = time.monotonic()
        bob = User.objects.get(username="bob").pk
        cursor.execute(GENERATE_CASES_SQL, {"count": count, "assignee": bob, "creator": bob})
        cursor.execute("VACUUM ANALYZE")
        print(f"generated {count:,} cases in {time.monotonic() - started:.0f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="generated cases (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (default 5)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    args = parser.parse_args(argv)
    if args.cases < PAGE_SIZE * 50 * 5 or args.repeat < 1:
        parser.error(
            f"--cases must be at least {PAGE_SIZE * 50 * 5:,} (bob's page 50 must exist) and --repeat at least 1"
        )

    ensure_database(args.database_url)
    os.environ.setdefault("DEBUG", "false")
    django_setup(args.database_url)
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("seed_demo", password=secrets.token_urlsafe(12), stdout=io.StringIO())
    ensure_cases(args.cases)

    from django.core.wsgi import get_wsgi_application

    from entitlements.access import queue_names_for
    from entitlements.models import Capability, User
    from entitlements.services import api_token_create

    application = get_wsgi_application()

    raw = psycopg.connect(args.database_url, autocommit=True)
    print(f"{args.cases:,} generated cases; in-process, p50 of {args.repeat} runs, ms")
    print(f"{'caller':<8}{'page':>5}{'cases in scope':>16}{'API':>9}{'count SQL':>11}{'page SQL':>10}")
    for username in CASEWORKERS:
        user = User.objects.get(username=username)
        token = api_token_create(user=user).key
        params = {"user": user.pk, "queues": queue_names_for(user=user, capability=Capability.VIEW)}
        for page in (1, 50):
            query = f"page={page}"
            status, body = wsgi_get(application, token, "/api/cases/", query)
            if status != 200:
                print(f"{username} {query}: HTTP {status} {body[:200]!r}", file=sys.stderr)
                return 1
            in_scope = json.loads(body)["count"]
            api = p50_ms(lambda: wsgi_get(application, token, "/api/cases/", query), args.repeat)
            count = p50_ms(
                lambda: raw.execute(SCOPE_SQL.format(columns="count(*)", tail=""), params).fetchone(), args.repeat
            )
            rows = p50_ms(
                lambda: raw.execute(
                    SCOPE_SQL.format(
                        columns="c.*",
                        tail=f"ORDER BY c.created_at DESC LIMIT {PAGE_SIZE} OFFSET {(page - 1) * PAGE_SIZE}",
                    ),
                    params,
                ).fetchall(),
                args.repeat,
            )
            print(f"{username:<8}{page:>5}{in_scope:>16,}{api:>9.0f}{count:>11.0f}{rows:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
