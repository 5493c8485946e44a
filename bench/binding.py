"""Parameter binding benchmark: claim-next with Django's client-side binding against server-side binding.

Django binds query parameters on the client by default and keeps psycopg's prepared statements off (so that
poolers in transaction mode work). Its documented alternative is `OPTIONS: {"server_side_binding": True}`, with
psycopg's `prepare_threshold` deciding when a repeated statement is prepared on the server. This compares, on the
claim path, in one process and one connection:

  client      Django's default: client-side binding, no prepared statements
  server      server_side_binding, prepare_threshold None (bound on the server, parsed and planned every time)
  prepared    server_side_binding, prepare_threshold 5 (psycopg's default: prepared from the fifth execution on)

Each round runs --claims claims per configuration, the configurations in an order that rotates from round to
round, the connection reopened with the configuration's OPTIONS (and warmed up) before each; twice over: through
the service (tasks.services.task_claim_next) and through the API's WSGI handler in-process (token lookup, claim,
serialization; no network, no gunicorn). It prints each configuration's median milliseconds per claim and the
median over the rounds of its time over the client configuration's in the same round: on a shared machine whose
speed drifts, a ratio within a round keeps the configuration's cost, not the drift.

Uses claim.py's backlog and claimer (loaded if the bench database holds another number of tasks).

    .venv/bin/python bench/binding.py
    .venv/bin/python bench/binding.py --rounds 5 --claims 100      # smoke
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time

import claim  # noqa: E402  (bench/ is on sys.path when run)
from common import django_setup, ensure_database, wsgi_request  # noqa: E402

CONFIGURATIONS = {
    "client": {},
    "server": {"server_side_binding": True, "prepare_threshold": None},
    "prepared": {"server_side_binding": True, "prepare_threshold": 5},
}
WARM_UP_CLAIMS = 10


def use_configuration(name: str) -> None:
    """Reopen the default connection with the configuration's OPTIONS."""
    from django.db import connection

    connection.close()
    options = connection.settings_dict["OPTIONS"]
    for key in ("server_side_binding", "prepare_threshold"):
        options.pop(key, None)
    options.update(CONFIGURATIONS[name])
    connection.features.__dict__.pop("uses_server_side_binding", None)
    connection.ensure_connection()


def wsgi_claim_next(application, token: str) -> int:
    status, _ = wsgi_request(application, token, claim.CLAIM_NEXT_PATH, method="POST")
    if status != 200:
        raise SystemExit(f"claim-next answered {status}: is the backlog drained?")
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tasks", type=int, default=1_000_000, help="OPEN tasks in the claimer's queues (default 1,000,000)"
    )
    parser.add_argument("--queues", type=int, default=20, help="bench queues (default 20)")
    parser.add_argument(
        "--rounds", type=int, default=15, help="rounds, each measuring every configuration (default 15)"
    )
    parser.add_argument("--claims", type=int, default=300, help="claims per configuration and round (default 300)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", claim.DEFAULT_DATABASE_URL))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.claims < 1:
        parser.error("--rounds and --claims must be at least 1")

    ensure_database(args.database_url)
    os.environ["DEBUG"] = "false"  # no query log
    django_setup(args.database_url)
    claim.ensure_schema_and_demo(demo_password=secrets.token_urlsafe(12))
    queues, user_id, token = claim.ensure_bench_queues_and_user(queue_count=args.queues, capacity=args.tasks)
    bench = claim.Bench(
        database_url=args.database_url, queues=queues, user_id=user_id, token=token, port=0, tasks=args.tasks
    )
    claim.ensure_loaded(argparse.Namespace(reload=False), bench)
    needed = len(CONFIGURATIONS) * 2 * args.rounds * (args.claims + WARM_UP_CLAIMS)
    if needed > args.tasks:
        parser.error(f"{needed:,} claims need a backlog at least that large")

    from django.core.wsgi import get_wsgi_application

    from entitlements.models import User
    from tasks.services import task_claim_next

    user = User.objects.get(pk=user_id)
    application = get_wsgi_application()
    paths = {
        "service": lambda: task_claim_next(user=user),
        "wsgi": lambda: wsgi_claim_next(application, token),
    }
    names = list(CONFIGURATIONS)
    per_claim_ms: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    claim.reset_backlog(bench)
    print(
        f"{args.rounds} rounds of {args.claims} claims per configuration and path; {claim.python_build()}", flush=True
    )
    try:
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for path, run in paths.items():
                timings = {}
                for name in names[shift:] + names[:shift]:
                    use_configuration(name)
                    for _ in range(WARM_UP_CLAIMS):
                        run()
                    started = time.perf_counter()
                    for _ in range(args.claims):
                        run()
                    timings[name] = (time.perf_counter() - started) * 1000.0 / args.claims
                    per_claim_ms.setdefault((path, name), []).append(timings[name])
                for name in names:
                    ratios.setdefault((path, name), []).append(timings[name] / timings["client"])
            print(
                f"  round {round_ + 1}: "
                + ", ".join(f"{path} {name} {per_claim_ms[(path, name)][-1]:.3f}" for path in paths for name in names),
                flush=True,
            )
    finally:
        claim.reset_backlog(bench)

    print(f"\n{'path':<8}{'binding':<10}{'ms/claim':>10}{'÷ client':>10}{'(min–max)':>14}")
    for path in paths:
        for name in names:
            values = ratios[(path, name)]
            print(
                f"{path:<8}{name:<10}{statistics.median(per_claim_ms[(path, name)]):>10.3f}"
                f"{statistics.median(values):>10.3f}{f'({min(values):.2f}–{max(values):.2f})':>14}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
