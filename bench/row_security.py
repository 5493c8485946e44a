"""Row-level security and encryption benchmark: claim-next and the inbox page with both on and both off, in one run.

  on    the tables' policies enabled, the application connected as workflow_app (RLS applies), every request one
        transaction in its user's row scope (RowScopeMiddleware), the scope sent by the execute wrapper; the tasks'
        form marks two variables sensitive and they are stored sealed (core/encryption.py), so a claim's answer
        opens them
  off   row-level security disabled on the tables (ALTER TABLE ... DISABLE ROW LEVEL SECURITY, as the owner), the
        execute wrapper taken off the connection, and a WSGI handler without RowScopeMiddleware: no transaction
        around the request, no scope sent, as before row-level security; the same variables stored in plaintext
        (the form marks nothing sensitive)

Each configuration has its own backlog of the same size and shape (claim.py's loader, --tasks OPEN tasks in --queues
queues), its own claimer and its own inbox user: sealed values are data, not a switch, so "on" claims from the
sealed backlog and "off" from the plaintext one.

Three paths, each in-process (no network, no gunicorn):

  service   tasks.services.task_claim_next (one statement; flowable.claim_next_for_user scopes itself)
  claim     POST /api/workflow/tasks/claim/next through the WSGI handler with an API token
  inbox     GET /inbox/ through the WSGI handler with a session, for a user holding --inbox-tasks claimed tasks

Each round measures each path in both configurations, one right after the other (--requests requests after
warming up), in an order that alternates from round to round; it prints each path's median milliseconds per request in each configuration and the median
over the rounds of on ÷ off within the round (a shared machine's speed drifts; a ratio within a round keeps the
cost of row-level security and encryption, not the drift). The issue's target: on within 15 % of off for
claim-next and the inbox.

Uses claim.py's backlog and claimer in its own database, made by the roles' command:

    .venv/bin/python manage.py create_database_roles --database rls_bench --print-env   # then eval its output
    .venv/bin/python bench/row_security.py                        # DATABASE_APP_URL, DATABASE_MIGRATE_URL from it
    .venv/bin/python bench/row_security.py --tasks 50000 --rounds 3 --requests 50   # smoke
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time

import claim  # noqa: E402  (bench/ is on sys.path when run)
import psycopg
import psycopg.conninfo
from common import django_setup, wsgi_request  # noqa: E402

CONFIGURATIONS = ("off", "on")
PATHS = ("service", "claim", "inbox")
TARGET = 1.15
WARM_UP_REQUESTS = 20
ROW_SCOPE_MIDDLEWARE = "entitlements.row_scope.RowScopeMiddleware"
RLS_TABLES = (
    "flowable.workflow_tasks",
    "flowable.task_history",
    "flowable.process_instances",
    "flowable.workflow_tasks_archive",
    "flowable.task_history_archive",
    "onecms.cases",
    "onecms.case_events",
    "onecms.case_workflow_mapping",
    "onecms.case_subjects",
)
# Per configuration: (queue prefix, claimer, claimer's role, inbox user, inbox role, inbox queue, sealed).
SETS = {
    "off": (claim.QUEUE_PREFIX, claim.BENCH_USER, claim.BENCH_ROLE, "bench-inbox", "bench-inbox-worker", "rls-inbox"),
    "on": (
        "bench-sealed-",
        "bench-claimer-sealed",
        "bench-worker-sealed",
        "bench-inbox-sealed",
        "bench-inbox-worker-sealed",
        "rls-inbox-sealed",
    ),
}
# A report's form: what the reporter said and who they are are sensitive; the channel is not. VARIANTS different
# values of each, about the size people write (statement ~450 characters).
SENSITIVE = ("statement", "reporter")
VARIANTS = 64
STATEMENT = (
    "Statement {i}: on the afternoon of the 14th the reporter saw the regional manager move stock between the two "
    "warehouses without a transfer note, twice in the same week; the second time a driver from an outside firm "
    "loaded it and the pallet numbers on the invoices do not match the pallets that left. The reporter raised it "
    "with their line manager, who told them to leave it. They fear being moved to nights if their name comes out."
)
VARIABLES_SQL = """
UPDATE flowable.workflow_tasks
   SET variables = jsonb_build_object('statement', (%(statements)s::text[])[1 + task_id %% %(variants)s],
                                      'reporter', (%(reporters)s::text[])[1 + task_id %% %(variants)s],
                                      'channel', 'hotline'),
       form_fields = %(form)s::jsonb
 WHERE queue_name = ANY(%(queues)s)
"""

INBOX_LOAD_SQL = """
INSERT INTO flowable.workflow_tasks
       (queue_name, name, description, candidate_groups, status, priority, due_date, escalation_level,
        required_skills, variables, form_fields, created_at, claimed_at, updated_at, assignee_id, task_definition_key,
        delegation_state)
SELECT %(queue)s, 'Inbox task ' || i, '', ARRAY[%(queue)s]::varchar[], 'CLAIMED', (i * 7) %% 101,
       now() + make_interval(hours => i - 5), 0, '{}', '{}', '[]', now() - make_interval(days => i), now(), now(),
       %(user_id)s, '', ''
  FROM generate_series(1, %(tasks)s) AS i
"""


def rls_set(owner_url: str, on: bool) -> None:
    with psycopg.connect(owner_url, autocommit=True) as owner:
        for table in RLS_TABLES:
            owner.execute(f"ALTER TABLE {table} {'ENABLE' if on else 'DISABLE'} ROW LEVEL SECURITY")


def form_fields(sealed: bool) -> list[dict]:
    fields = [
        {"id": "statement", "label": "Statement", "type": "text", "required": True},
        {"id": "reporter", "label": "Reporter", "type": "string", "required": True},
        {"id": "channel", "label": "Channel", "type": "string", "required": False},
    ]
    return [{**f, "sensitive": sealed and f["id"] in SENSITIVE} for f in fields]


def ensure_variables(admin_url: str, queues: list[str], sealed: bool) -> None:
    """Every task of `queues` carries the report's variables, sealed or plaintext (once; claims leave them)."""
    import json

    from core import encryption

    with psycopg.connect(admin_url, autocommit=True) as conn:
        sample = conn.execute(
            "SELECT variables ->> 'statement' FROM flowable.workflow_tasks WHERE queue_name = ANY(%s) "
            "ORDER BY task_id DESC LIMIT 1",
            [queues],
        ).fetchone()
        if sample and sample[0] is not None and encryption.is_sealed(sample[0]) == sealed:
            return
        started = time.monotonic()
        seal = encryption.seal if sealed else (lambda text: text)
        conn.execute(
            VARIABLES_SQL,
            {
                "statements": [seal(STATEMENT.format(i=i)) for i in range(VARIANTS)],
                "reporters": [seal(f"Reporter Person {i} (+44 7700 900{i:03d})") for i in range(VARIANTS)],
                "variants": VARIANTS,
                "form": json.dumps(form_fields(sealed)),
                "queues": queues,
            },
        )
        claim.vacuum(conn)
        print(f"{'sealed' if sealed else 'plaintext'} variables on {queues[0]}… in {time.monotonic() - started:.1f} s")


def ensure_inbox(admin_url: str, tasks: int, configuration: str) -> tuple[int, str]:
    """A user who works the configuration's inbox queue and holds `tasks` claimed tasks there; their session
    cookie."""
    from django.test import Client

    from entitlements.models import User, UserRoleAssignment
    from entitlements.services import role_assignment_grant, role_save
    from queues.services import queue_save

    *_, username, role_code, queue = SETS[configuration]
    queue_save(
        queue_name=queue, display_name=f"Benchmark inbox ({configuration})", max_capacity=tasks + 1, current_load=tasks
    )
    role = role_save(
        role_code=role_code, name=f"Benchmark inbox ({configuration})", queue_names=[queue], permissions=["work"]
    )
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
    if not UserRoleAssignment.objects.filter(user=user, role=role, revoked_at__isnull=True).exists():
        role_assignment_grant(user=user, role=role, reason="row-level security benchmark")
    with psycopg.connect(admin_url) as owner:
        owner.execute("DELETE FROM flowable.workflow_tasks WHERE queue_name = %s", [queue])
        owner.execute(INBOX_LOAD_SQL, {"queue": queue, "user_id": user.pk, "tasks": tasks})
    ensure_variables(admin_url, [queue], sealed=configuration == "on")
    client = Client()
    client.force_login(user)
    return user.pk, client.cookies["sessionid"].value


def handlers():
    """The WSGI handler with the project's middleware, and one without RowScopeMiddleware."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    on = WSGIHandler()
    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != ROW_SCOPE_MIDDLEWARE]):
        off = WSGIHandler()
    return {"on": on, "off": off}


def scope_wrapper_set(on: bool) -> None:
    from django.db import connection

    from entitlements.row_scope import apply_row_scope

    connection.ensure_connection()
    if on and apply_row_scope not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, apply_row_scope)
    if not on and apply_row_scope in connection.execute_wrappers:
        connection.execute_wrappers.remove(apply_row_scope)


def expect(status: int, path: str) -> None:
    if status != 200:
        raise SystemExit(f"{path} answered {status}: is the backlog drained?")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="OPEN tasks in the claimer's queues")
    parser.add_argument("--queues", type=int, default=20, help="bench queues (default 20)")
    parser.add_argument("--inbox-tasks", type=int, default=40, help="claimed tasks in the inbox user's inbox")
    parser.add_argument("--rounds", type=int, default=15, help="rounds, each measuring both configurations")
    parser.add_argument("--requests", type=int, default=200, help="requests per configuration, path and round")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_APP_URL"), help="as workflow_app")
    parser.add_argument("--owner-url", default=os.environ.get("DATABASE_MIGRATE_URL"), help="as workflow_owner")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("DATABASE_ADMIN_URL"),
        help="a superuser, for loading and resetting the backlog (history is append-only to the others); its "
        "database name is replaced by the benchmark's",
    )
    args = parser.parse_args(argv)
    if not (args.database_url and args.owner_url and args.admin_url):
        parser.error("give the three URLs, or eval `manage.py create_database_roles --database ... --print-env`")
    name = psycopg.conninfo.conninfo_to_dict(args.database_url)["dbname"]
    admin_url = psycopg.conninfo.make_conninfo(args.admin_url, dbname=name)
    needed = 2 * args.rounds * (args.requests + WARM_UP_REQUESTS)  # per configuration: service and claim
    if needed > args.tasks:
        parser.error(f"{needed:,} claims need a backlog at least that large")

    os.environ["DEBUG"] = "false"  # no query log
    os.environ["DATABASE_MIGRATE_URL"] = args.owner_url
    django_setup(args.database_url)
    claim.ensure_schema_and_demo(demo_password=secrets.token_urlsafe(12))
    from entitlements.models import User
    from tasks.services import task_claim_next

    benches, users, cookies = {}, {}, {}
    for configuration in CONFIGURATIONS:
        prefix, username, role_code, *_ = SETS[configuration]
        queues, user_id, token = claim.ensure_bench_queues_and_user(
            queue_count=args.queues, capacity=args.tasks, prefix=prefix, username=username, role_code=role_code
        )
        benches[configuration] = claim.Bench(
            database_url=admin_url, queues=queues, user_id=user_id, token=token, port=0, tasks=args.tasks
        )
        claim.ensure_loaded(argparse.Namespace(reload=False), benches[configuration])
        ensure_variables(admin_url, queues, sealed=configuration == "on")
        users[configuration] = User.objects.get(pk=user_id)
        _, session = ensure_inbox(admin_url, args.inbox_tasks, configuration)
        cookies[configuration] = {"HTTP_COOKIE": f"sessionid={session}", "HTTP_ACCEPT": "text/html"}
    application = handlers()

    def run(path: str, configuration: str) -> None:
        if path == "service":
            if task_claim_next(user=users[configuration]) is None:
                raise SystemExit("the backlog is drained")
        elif path == "claim":
            status, body = wsgi_request(
                application[configuration], benches[configuration].token, claim.CLAIM_NEXT_PATH, method="POST"
            )
            expect(status, path)
            if configuration == "on" and b"Statement " not in body:
                raise SystemExit("the claim's answer does not show the opened statement")
        else:
            expect(wsgi_request(application[configuration], "", "/inbox/", headers=cookies[configuration])[0], path)

    per_request_ms: dict[tuple[str, str], list[float]] = {}
    ratios: dict[str, list[float]] = {}
    for bench in benches.values():
        claim.reset_backlog(bench)
    print(f"{args.rounds} rounds of {args.requests} requests per configuration and path; {claim.python_build()}")
    try:
        for round_ in range(args.rounds):
            order = CONFIGURATIONS if round_ % 2 == 0 else tuple(reversed(CONFIGURATIONS))
            timings: dict[tuple[str, str], float] = {}
            for path in PATHS:
                for configuration in order:
                    rls_set(args.owner_url, on=configuration == "on")
                    scope_wrapper_set(on=configuration == "on")
                    for _ in range(WARM_UP_REQUESTS):
                        run(path, configuration)
                    started = time.perf_counter()
                    for _ in range(args.requests):
                        run(path, configuration)
                    timings[(path, configuration)] = (time.perf_counter() - started) * 1000.0 / args.requests
                    per_request_ms.setdefault((path, configuration), []).append(timings[(path, configuration)])
            for path in PATHS:
                ratios.setdefault(path, []).append(timings[(path, "on")] / timings[(path, "off")])
            print(
                f"  round {round_ + 1}: "
                + ", ".join(f"{path} {ratios[path][-1]:.3f}" for path in PATHS)
                + " (on ÷ off)",
                flush=True,
            )
    finally:
        rls_set(args.owner_url, on=True)
        scope_wrapper_set(on=True)
        for bench in benches.values():
            claim.reset_backlog(bench)

    print(f"\n{'path':<9}{'off ms':>9}{'on ms':>9}{'on ÷ off':>10}{'(min–max)':>14}  target ≤ {TARGET:.2f}")
    met = True
    for path in PATHS:
        values = ratios[path]
        ratio = statistics.median(values)
        met = met and ratio <= TARGET
        print(
            f"{path:<9}{statistics.median(per_request_ms[(path, 'off')]):>9.3f}"
            f"{statistics.median(per_request_ms[(path, 'on')]):>9.3f}{ratio:>10.3f}"
            f"{f'({min(values):.2f}–{max(values):.2f})':>14}  {'met' if ratio <= TARGET else 'MISSED'}"
        )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
