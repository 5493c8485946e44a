"""SLA sweep benchmark: escalate_overdue_tasks against one raw SQL UPDATE doing the same work, in one run.

Loads N tasks (default 1,000,000, OPEN, in 20 queues) of which M (default 100,000) are overdue, gives every bench
queue one escalation level (overdue → raise priority by 10), then times:

  sql       one UPDATE that raises priority and escalation level of every overdue task and writes a history row per
            task (a data-modifying CTE): the least any correct sweep has to do;
  service   tasks.sla.escalation.escalate_overdue_tasks(): one statement per queue and level, with history and loads.

The backlog is reset between the two (escalation level and priority back, bench history deleted, VACUUM ANALYZE).
It prints both times, the ratio service/sql (target ≤ 1.5) and checks that each overdue task was escalated exactly
once and no other task was touched; it exits 1 otherwise.

    .venv/bin/python bench/sla.py                        # 1M tasks, 100k overdue
    .venv/bin/python bench/sla.py --tasks 200000 --overdue 20000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import django_setup, ensure_database  # noqa: E402  (bench/ is on sys.path when run)

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/workflow_bench"
QUEUE_PREFIX = "slabench-"
TARGET_RATIO = 1.5
RULES = [{"level": 1, "trigger": {"type": "overdue"}, "actions": {"raise_priority": 10}}]

LOAD_SQL = """
INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
    escalation_level, required_skills, variables, form_fields, created_at, updated_at, task_definition_key,
    delegation_state, due_date)
SELECT 'sla bench ' || g, '', (%(queues)s::text[])[1 + g %% %(queue_count)s], '{}', 'OPEN', g %% 90, 0, '{}', '{}', '[]',
       now() - interval '10 days', now(), '', '',
       CASE WHEN g <= %(overdue)s THEN now() - interval '1 hour' ELSE now() + interval '30 days' END
  FROM generate_series(1, %(tasks)s) AS g
"""

RAW_SWEEP_SQL = """
WITH changed AS (
    UPDATE flowable.workflow_tasks t
       SET priority = LEAST(100, t.priority + 10), escalation_level = 1, updated_at = now()
     WHERE t.queue_name = ANY(%(queues)s) AND t.status IN ('OPEN', 'CLAIMED')
       AND t.escalation_level = 0 AND t.due_date < now()
 RETURNING t.task_id, t.queue_name, t.priority
)
INSERT INTO flowable.task_history (task_id, event_type, actor_id, via_account_id, old_values, new_values, comment, created_at)
SELECT task_id, 'ESCALATED', NULL, NULL, jsonb_build_object('escalation_level', 0),
       jsonb_build_object('escalation_level', 1, 'priority', priority), 'bench', now()
  FROM changed
"""


def prepare(queue_count: int, tasks: int, overdue: int) -> list[str]:
    from django.core.management import call_command
    from django.db import connection

    from queues.models import WorkflowQueue
    from queues.services import queue_save

    call_command("migrate", verbosity=0)
    names = [f"{QUEUE_PREFIX}{n:02d}" for n in range(queue_count)]
    WorkflowQueue.objects.exclude(queue_name__in=names).update(escalation_rules=[])
    for name in names:
        queue_save(queue_name=name, display_name=name, max_capacity=tasks, escalation_rules=RULES)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM flowable.task_history WHERE task_id IN "
            "(SELECT task_id FROM flowable.workflow_tasks WHERE queue_name = ANY(%s))",
            [names],
        )
        cursor.execute("DELETE FROM flowable.workflow_tasks WHERE queue_name = ANY(%s)", [names])
        started = time.perf_counter()
        cursor.execute(LOAD_SQL, {"queues": names, "queue_count": queue_count, "overdue": overdue, "tasks": tasks})
        print(
            f"loaded {tasks:,} tasks ({overdue:,} overdue) in {queue_count} queues "
            f"in {time.perf_counter() - started:.1f} s"
        )
    return names


def reset(names: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM flowable.task_history WHERE event_type = 'ESCALATED' AND task_id IN "
            "(SELECT task_id FROM flowable.workflow_tasks WHERE queue_name = ANY(%s))",
            [names],
        )
        cursor.execute(
            "UPDATE flowable.workflow_tasks SET escalation_level = 0, priority = GREATEST(0, priority - 10) "
            "WHERE queue_name = ANY(%s) AND escalation_level = 1",
            [names],
        )
        cursor.execute("VACUUM ANALYZE flowable.workflow_tasks")
        cursor.execute("VACUUM ANALYZE flowable.task_history")


def check(names: list[str], overdue: int) -> list[str]:
    from django.db import connection

    problems = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE escalation_level = 1), count(*) FILTER (WHERE escalation_level > 1),"
            " count(*) FILTER (WHERE escalation_level = 1 AND due_date >= now())"
            " FROM flowable.workflow_tasks WHERE queue_name = ANY(%s)",
            [names],
        )
        escalated, twice, wrong = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), count(DISTINCT task_id) FROM flowable.task_history WHERE event_type = 'ESCALATED'"
            " AND task_id IN (SELECT task_id FROM flowable.workflow_tasks WHERE queue_name = ANY(%s))",
            [names],
        )
        events, distinct = cursor.fetchone()
    if escalated != overdue:
        problems.append(f"{escalated} tasks escalated, expected {overdue}")
    if twice or wrong:
        problems.append(f"{twice} escalated twice, {wrong} escalated without being overdue")
    if events != distinct or events != overdue:
        problems.append(f"{events} history events for {distinct} tasks, expected {overdue}")
    return problems


def time_raw_sql(names: list[str]) -> float:
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(RAW_SWEEP_SQL, {"queues": names})
    return time.perf_counter() - started


def time_service() -> float:
    from tasks.sla.escalation import escalate_overdue_tasks

    started = time.perf_counter()
    escalate_overdue_tasks()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--overdue", type=int, default=100_000)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    if not 0 < args.overdue <= args.tasks:
        parser.error("--overdue must be between 1 and --tasks")
    ensure_database(args.database_url)
    django_setup(args.database_url)
    names = prepare(args.queues, args.tasks, args.overdue)
    results, failures = {}, []
    for label, run in (("sql", lambda: time_raw_sql(names)), ("service", time_service)):
        reset(names)
        results[label] = run()
        failures += [f"{label}: {p}" for p in check(names, args.overdue)]
        print(f"{label:8} {results[label]:8.2f} s  ({args.overdue / results[label]:,.0f} tasks/s)")
    ratio = results["service"] / results["sql"]
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"ratio service/sql = {ratio:.2f} ({verdict} the ≤ {TARGET_RATIO} target)")
    for failure in failures:
        print(f"CHECK FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
