"""Business-calendar cache benchmark: a new task's due date with the queue's calendar cached (Redis) and read from
the database, in one run.

The due date is what every new task computes (tasks.services.due_date_for): the queue's calendar, else its
department's or the nearest ancestor's (one query a level), then the calendar with its holidays. The bench queue
sits in a department two levels below the one with the calendar, as the demo's fraud-investigation does, with a
year of holidays. Each round times --calls due dates cached and uncached, one after the other; it prints each side's
microseconds and queries per due date and the median over the rounds of uncached ÷ cached.

    REDIS_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/calendar_cache.py [--database-url URL] [--rounds 9]

Runs as the database's superuser on its own database (workflow_bench by default), like bench/engine.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta

from common import DEFAULT_DATABASE_URL, django_setup, ensure_database  # noqa: E402

QUEUE = "bench-calendar"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=1000, help="due dates per side and round (query log: <= 1,800)")
    args = parser.parse_args(argv)
    if not os.environ.get("REDIS_URL"):
        parser.error("set REDIS_URL: the cache is off without it (queues/calendar_cache.py)")
    os.environ["DEBUG"] = "true"  # count queries
    ensure_database(args.database_url)
    django_setup(args.database_url)
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection, reset_queries

    from entitlements.models import Department
    from queues.services import business_calendar_save, queue_save
    from tasks.services import due_date_for

    call_command("migrate", verbosity=0)
    top, _ = Department.objects.get_or_create(dept_code="bench-top", defaults={"dept_name": "Bench top"})
    middle, _ = Department.objects.get_or_create(dept_code="bench-mid", defaults={"dept_name": "Bench", "parent": top})
    leaf, _ = Department.objects.get_or_create(dept_code="bench-leaf", defaults={"dept_name": "Leaf", "parent": middle})
    holidays = {(date(2026, 1, 1) + timedelta(days=7 * week)).isoformat(): f"Week {week}" for week in range(52)}
    business_calendar_save(name="Bench office", time_zone="Europe/London", holidays=holidays, departments=["bench-top"])
    queue = queue_save(queue_name=QUEUE, display_name="Calendar bench", department=leaf, max_capacity=10)
    start = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
    cache.clear()

    def side(seconds: int) -> tuple[float, float]:
        settings.WORK_CALENDAR_CACHE_SECONDS = seconds
        due_date_for(queue, 50, start=start)  # warm
        reset_queries()
        began = time.perf_counter()
        for _ in range(args.calls):
            due_date_for(queue, 50, start=start)
        elapsed = time.perf_counter() - began
        return elapsed * 1e6 / args.calls, len(connection.queries) / args.calls

    results = {"cached": [], "uncached": []}
    ratios = []
    for round_ in range(args.rounds):
        order = ("cached", "uncached") if round_ % 2 == 0 else ("uncached", "cached")
        measured = {name: side(300 if name == "cached" else 0) for name in order}
        for name, value in measured.items():
            results[name].append(value)
        ratios.append(measured["uncached"][0] / measured["cached"][0])
    print(f"{args.rounds} rounds of {args.calls} due dates per side; queue {QUEUE} two departments below its calendar")
    for name in ("uncached", "cached"):
        micros = statistics.median(value[0] for value in results[name])
        queries = statistics.median(value[1] for value in results[name])
        print(f"{name:<9}{micros:>10.1f} µs per due date{queries:>6.1f} queries")
    print(f"uncached ÷ cached: {statistics.median(ratios):.1f} (min {min(ratios):.1f}, max {max(ratios):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
