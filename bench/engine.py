"""Workflow engine benchmark: process starts and task completions per second, with and without the database.

In one run, on the demo model (tasks/bpmn/onecms_case_handling.bpmn):

  engine    tasks.bpmn.engine alone (SpiffWorkflow, no database): start an instance, then complete intake and triage,
            carrying the serialised state between steps as the services do (the spec restored once, the state
            through JSON) — the baseline;
  service   tasks.bpmn.workflows.process_start + tasks.services.task_claim/task_complete on PostgreSQL: the same steps,
            with locking, task rows, history, queue loads and the engine state stored after each step. A completion
            is finding the task (one query), claiming it and completing it, as a caseworker would.

It prints starts/s and completions/s for both, the ratios service/engine against issue 24's target, and the
statements per completion: Django's queries (lookup, claim, complete), the row-scope settings sent before them
(entitlements/row_scope.py) and the commits.

Then external tasks (issue 25), on tests/tasks/external/records_check.bpmn (start → external task → user task):

  external service   tasks.external.services: fetch-and-lock one item, then complete it (the engine moves the
                     instance on to its user task), as a worker account;
  external raw SQL   the same fetch-and-lock statement (services.FETCH_AND_LOCK_SQL) and an UPDATE that marks the item
                     completed: the floor of the round trip without the permission check and the engine;
  long-poll wake-up  a fetch waiting with asyncResponseTimeout, woken by the NOTIFY of an item's commit: the delay
                     from the commit to the answer (median and max).

Then message correlation (issue 25), on tests/tasks/engine/messages/message_catch.bpmn (a user task, then an
intermediate catch event waiting for documents_received, then a user task): N instances wait for the message;

  message service    tasks.bpmn.messages.message_correlate by message name and business key, one per instance, as the
                     sender (alice, who works triage): the waiting instance found and locked, the engine step, the next
                     task created with its history;
  message raw SQL    the same rows by hand: the waiting instance found by message name and business key (FOR UPDATE),
                     its wait cleared and the message's variables merged (UPDATE), a history row inserted; each in its
                     own transaction — the floor without the access check and the engine.

It prints correlations/s for both, the ratio and the statements per correlation (queries and row-scope settings).

    REDIS_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/engine.py                     # 200 instances
    REDIS_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/engine.py --instances 1000

Without REDIS_URL the business-calendar cache is off (queues/calendar_cache.py) and each new task reads its queue's
calendar from the database; the script says which it measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from common import django_setup, ensure_database  # noqa: E402  (bench/ is on sys.path when run)

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/workflow_bench"
MODEL = PROJECT_DIR / "tasks" / "bpmn" / "onecms_case_handling.bpmn"
INTAKE = {"received_on": "2026-11-02", "received_via": "EMAIL"}
TRIAGE = {"allegation_type": "MISCONDUCT"}
TARGET_COMPLETIONS_RATIO = 0.35  # issue 24
EXTERNAL_MODEL = PROJECT_DIR / "tests" / "tasks" / "external" / "records_check.bpmn"
EXTERNAL_TOPIC = "records-check"
EXTERNAL_LOCK_MS = 60_000
WAKE_UP_SAMPLES = 20
MESSAGE_MODEL = PROJECT_DIR / "tests" / "tasks" / "engine" / "messages" / "message_catch.bpmn"
MESSAGE_NAME = "documents_received"
MESSAGE_VARIABLES = {"pages": 3}


def set_synchronous_commit(database_url: str, on: bool) -> None:
    """Off takes the WAL flush (the disk) out of each commit, so the figures show the services' CPU and round trips."""
    import psycopg
    from psycopg import conninfo, sql

    name = conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(conninfo.make_conninfo(database_url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = {}").format(
                sql.Identifier(name), sql.SQL("on" if on else "off")
            )
        )


def run_engine_alone(instances: int, *, spec_loaded_once: bool = True) -> tuple[float, float]:
    """Seconds spent starting instances, and completing two tasks of each, with the engine only: the spec restored
    once, as the services do (tasks.bpmn.workflows.definition_runtime), or on every step, as they did before."""
    import json

    from tasks.bpmn import engine

    spec = engine.parse_definition(bpmn_xml=MODEL.read_text()).spec
    if spec_loaded_once:
        spec = engine.load_spec(spec)
    now = datetime.now(UTC)
    started = time.perf_counter()
    runs = []
    for n in range(instances):
        run = engine.start(spec=spec, variables={"case_number": f"B-{n}"}, now=now)
        # Stored and loaded as JSON, as the services do.
        runs.append((json.loads(json.dumps(run.state)), run.ready_user_tasks[0].engine_task_id))
    start_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for state, task_id in runs:
        for variables in (INTAKE, TRIAGE):
            run = engine.complete_task(spec=spec, state=state, engine_task_id=task_id, variables=variables, now=now)
            state = json.loads(json.dumps(run.state))
            task_id = run.ready_user_tasks[0].engine_task_id if run.ready_user_tasks else None
    return start_seconds, time.perf_counter() - started


class StatementCount:
    """Statements sent to PostgreSQL, by phase: Django's queries (an execute wrapper) and the row-scope settings
    that entitlements.row_scope sends past Django's cursor before them."""

    def __init__(self):
        self.queries: Counter[str] = Counter()
        self.scopes: Counter[str] = Counter()
        self.phase = ""

    @contextmanager
    def counting(self):
        from django.db import connection

        from entitlements import row_scope

        send = row_scope._send

        def counted_send(*args, **kwargs):
            self.scopes[self.phase] += 1
            return send(*args, **kwargs)

        def counted_query(execute, sql, params, many, context):
            self.queries[self.phase] += 1
            return execute(sql, params, many, context)

        row_scope._send = counted_send
        try:
            with connection.execute_wrapper(counted_query):
                yield self
        finally:
            row_scope._send = send


def run_services(instances: int, count: StatementCount) -> tuple[float, float]:
    from entitlements.models import User
    from tasks.bpmn.workflows import definition_deploy, process_start
    from tasks.models import WorkflowDefinition, WorkflowTask
    from tasks.services import task_claim, task_complete

    supervisor, alice = User.objects.get(username="supervisor"), User.objects.get(username="alice")
    if not WorkflowDefinition.objects.filter(process_key="onecms_case_handling").exists():
        definition_deploy(user=supervisor, bpmn_xml=MODEL.read_text())
    started = time.perf_counter()
    ids = [
        process_start(
            user=alice,
            process_key="onecms_case_handling",
            business_key=f"BENCH-{n}",
            variables={"case_number": f"BENCH-{n}"},
        ).pk
        for n in range(instances)
    ]
    start_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with count.counting():
        for instance_id in ids:
            for variables in (INTAKE, TRIAGE):
                count.phase = "lookup"
                task = (
                    WorkflowTask.objects.filter(process_instance_id=instance_id, status="OPEN")
                    .order_by("task_id")
                    .first()
                )
                count.phase = "claim"
                task_claim(user=alice, task_id=task.pk)
                count.phase = "complete"
                task_complete(user=alice, task_id=task.pk, variables=variables)
    return start_seconds, time.perf_counter() - started


def cleanup(prefix: str = "BENCH-") -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "WITH doomed AS (SELECT process_instance_id FROM flowable.process_instances WHERE business_key LIKE %s),"
            " tasks AS (SELECT task_id FROM flowable.workflow_tasks WHERE process_instance_id IN (SELECT * FROM doomed)),"
            " h AS (DELETE FROM flowable.task_history WHERE task_id IN (SELECT * FROM tasks))"
            " SELECT 1",
            [prefix + "%"],
        )
        cursor.execute(
            "DELETE FROM flowable.workflow_tasks WHERE process_instance_id IN (SELECT process_instance_id"
            " FROM flowable.process_instances WHERE business_key LIKE %s)",
            [prefix + "%"],
        )
        cursor.execute("DELETE FROM flowable.process_instances WHERE business_key LIKE %s", [prefix + "%"])
        cursor.execute(
            "UPDATE queues.workflow_queues q SET current_load = (SELECT count(*) FROM flowable.workflow_tasks t"
            " WHERE t.queue_name = q.queue_name AND t.status = 'CLAIMED')"
        )


def external_worker():
    from django.contrib.auth.models import Permission

    from entitlements.models import User

    worker, _ = User.objects.get_or_create(username="bench-external-worker")
    worker.user_permissions.add(Permission.objects.get(codename="work_external_tasks", content_type__app_label="tasks"))
    return worker


def start_external(instances: int, prefix: str) -> None:
    from entitlements.models import User
    from tasks.bpmn.workflows import definition_deploy, process_start
    from tasks.models import WorkflowDefinition

    supervisor = User.objects.get(username="supervisor")
    if not WorkflowDefinition.objects.filter(process_key="records_check").exists():
        definition_deploy(user=supervisor, bpmn_xml=EXTERNAL_MODEL.read_text())
    for n in range(instances):
        process_start(user=supervisor, process_key="records_check", business_key=f"{prefix}{n}")


def run_external_services(instances: int, worker) -> float:
    """Seconds for `instances` round trips (fetch-and-lock one, complete it) through the services."""
    from tasks.external import services

    topics = [services.TopicRequest(topic_name=EXTERNAL_TOPIC, lock_duration_ms=EXTERNAL_LOCK_MS)]
    started = time.perf_counter()
    for _ in range(instances):
        (item,) = services.external_tasks_fetch_and_lock(user=worker, worker_id="bench", topics=topics, max_tasks=1)
        services.external_task_complete(user=worker, external_task_id=item.external_task_id, worker_id="bench")
    return time.perf_counter() - started


def run_external_raw_sql(instances: int, worker) -> float:
    """Seconds for `instances` round trips of the raw statements: the fetch-and-lock statement and a completing
    UPDATE, each in its own transaction."""
    from django.db import connection, transaction
    from django.utils import timezone

    from tasks.external.services import FETCH_AND_LOCK_SQL

    started = time.perf_counter()
    for _ in range(instances):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                FETCH_AND_LOCK_SQL,
                {
                    "topic_names": [EXTERNAL_TOPIC],
                    "lock_ms": [EXTERNAL_LOCK_MS],
                    "now": timezone.now(),
                    "max_tasks": 1,
                    "worker_id": "bench",
                    "user_id": worker.pk,
                },
            )
            item_id = cursor.fetchone()[0]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE flowable.external_tasks SET status = 'COMPLETED', completed_at = now(), lock_expires_at = NULL"
                " WHERE external_task_id = %s AND worker_id = 'bench'",
                [item_id],
            )
    return time.perf_counter() - started


def measure_wake_ups(worker, samples: int) -> list[float]:
    """Seconds from an item's commit to the answer of a fetch that was waiting for it."""
    import threading

    from django.db import connections

    from tasks.external import services
    from tasks.external.wakeups import WAKEUPS

    topics = [services.TopicRequest(topic_name=EXTERNAL_TOPIC, lock_duration_ms=EXTERNAL_LOCK_MS)]
    WAKEUPS.generation()
    delays = []
    for n in range(samples):
        answer = {}

        def poll(answer=answer):
            try:
                answer["items"] = services.external_tasks_fetch_and_lock(
                    user=worker, worker_id="poller", topics=topics, max_tasks=1, async_response_timeout_ms=10_000
                )
                answer["at"] = time.perf_counter()
            finally:
                connections.close_all()

        thread = threading.Thread(target=poll)
        thread.start()
        time.sleep(0.2)  # it looks, finds nothing and waits
        start_external(1, f"WAKE-{n}-")
        committed = time.perf_counter()
        thread.join()
        if answer.get("items"):
            delays.append(answer["at"] - committed)
    WAKEUPS.stop()
    return delays


def cleanup_external() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM flowable.external_task_history")
        cursor.execute("DELETE FROM flowable.process_incidents WHERE external_task_id IS NOT NULL")
        cursor.execute("DELETE FROM flowable.external_tasks")
    for prefix in ("EXT-", "RAW-", "WAKE-"):
        cleanup(prefix)


def report_external_tasks(instances: int, rounds: int) -> None:
    worker = external_worker()
    service, raw = [], []
    for _ in range(rounds):
        cleanup_external()
        start_external(instances, "EXT-")
        service.append(instances / run_external_services(instances, worker))
        cleanup_external()
        start_external(instances, "RAW-")
        raw.append(instances / run_external_raw_sql(instances, worker))
    cleanup_external()
    delays = measure_wake_ups(worker, WAKE_UP_SAMPLES)
    cleanup_external()
    print(f"external tasks: {rounds} rounds of {instances} round trips (fetch-and-lock one + complete)")
    print(f"{'external service':22} {statistics.median(service):10.1f} round trips/s")
    print(f"{'external raw SQL':22} {statistics.median(raw):10.1f} round trips/s")
    ratios = [s / r for s, r in zip(service, raw, strict=True)]
    print(f"external service / raw SQL: {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}–{max(ratios):.2f})")
    if delays:
        print(
            f"long-poll wake-up after commit: median {statistics.median(delays) * 1000:.1f} ms,"
            f" max {max(delays) * 1000:.1f} ms ({len(delays)} of {WAKE_UP_SAMPLES} samples answered)"
        )


def start_waiting_for_message(instances: int, prefix: str) -> None:
    """`instances` await_documents instances past their first task: each waits for documents_received."""
    from entitlements.models import User
    from tasks.bpmn.workflows import definition_deploy, process_start
    from tasks.models import WorkflowDefinition, WorkflowTask
    from tasks.services import task_claim, task_complete

    supervisor, alice = User.objects.get(username="supervisor"), User.objects.get(username="alice")
    if not WorkflowDefinition.objects.filter(process_key="await_documents").exists():
        definition_deploy(user=supervisor, bpmn_xml=MESSAGE_MODEL.read_text())
    for n in range(instances):
        instance = process_start(user=supervisor, process_key="await_documents", business_key=f"{prefix}{n}")
        task = WorkflowTask.objects.get(process_instance=instance, status="OPEN")
        task_claim(user=alice, task_id=task.pk)
        task_complete(user=alice, task_id=task.pk, variables={})


def run_message_services(instances: int, prefix: str, count: StatementCount) -> float:
    """Seconds for `instances` correlations through tasks.bpmn.messages.message_correlate, one per business key."""
    from entitlements.models import User
    from tasks.bpmn.messages import message_correlate

    alice = User.objects.get(username="alice")
    count.phase = "correlate"
    started = time.perf_counter()
    with count.counting():
        for n in range(instances):
            message_correlate(
                user=alice, message_name=MESSAGE_NAME, business_key=f"{prefix}{n}", variables=MESSAGE_VARIABLES
            )
    return time.perf_counter() - started


# The raw floor of one correlation: the waiting row by message name and business key, locked; its wait cleared and
# the message's variables merged; a history row (on the instance's last task, as the service's new task gets one).
RAW_FIND_WAITING_SQL = """
SELECT p.process_instance_id,
       (SELECT max(t.task_id) FROM flowable.workflow_tasks t WHERE t.process_instance_id = p.process_instance_id)
  FROM flowable.process_instances p
 WHERE p.status = 'RUNNING' AND p.waiting_messages @> ARRAY[%(name)s]::varchar[] AND p.business_key = %(key)s
   FOR UPDATE OF p
"""
RAW_DELIVER_SQL = """
UPDATE flowable.process_instances
   SET waiting_messages = '{}', variables = variables || %(variables)s::jsonb, updated_at = now()
 WHERE process_instance_id = %(id)s
"""
RAW_HISTORY_SQL = """
INSERT INTO flowable.task_history (task_id, event_type, actor_id, via_account_id, old_values, new_values, comment,
                                   created_at)
VALUES (%(task_id)s, 'CREATED', %(user_id)s, NULL, '{}', jsonb_build_object('message', %(name)s), '', now())
"""


def run_message_raw_sql(instances: int, prefix: str) -> float:
    """Seconds for `instances` correlations as the three raw statements, each correlation one transaction."""
    import json

    from django.db import connection, transaction

    from entitlements.models import User
    from entitlements.row_scope import system_scope

    alice = User.objects.get(username="alice")
    variables = json.dumps(MESSAGE_VARIABLES)
    started = time.perf_counter()
    for n in range(instances):
        with transaction.atomic(), system_scope(), connection.cursor() as cursor:
            cursor.execute(RAW_FIND_WAITING_SQL, {"name": MESSAGE_NAME, "key": f"{prefix}{n}"})
            instance_id, task_id = cursor.fetchone()
            cursor.execute(RAW_DELIVER_SQL, {"variables": variables, "id": instance_id})
            cursor.execute(RAW_HISTORY_SQL, {"task_id": task_id, "user_id": alice.pk, "name": MESSAGE_NAME})
    return time.perf_counter() - started


def report_messages(instances: int, rounds: int) -> None:
    from tasks.models import ProcessInstance

    count = StatementCount()
    service, raw = [], []
    for _ in range(rounds):
        for prefix in ("MSG-", "MSGRAW-"):
            cleanup(prefix)
            start_waiting_for_message(instances, prefix)
        service.append(instances / run_message_services(instances, "MSG-", count))
        raw.append(instances / run_message_raw_sql(instances, "MSGRAW-"))
        waiting = ProcessInstance.objects.filter(business_key__startswith="MSG", waiting_messages__len__gt=0)
        assert not waiting.exists(), "a correlation left its instance waiting"
    for prefix in ("MSG-", "MSGRAW-"):
        cleanup(prefix)
    measured = rounds * instances
    print(f"messages: {rounds} rounds of {instances} correlations ({MESSAGE_NAME} by business key)")
    print(f"{'message service':22} {statistics.median(service):10.1f} correlations/s")
    print(f"{'message raw SQL':22} {statistics.median(raw):10.1f} correlations/s")
    ratios = [s / r for s, r in zip(service, raw, strict=True)]
    print(f"message service / raw SQL: {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}–{max(ratios):.2f})")
    print(
        f"statements per correlation: {count.queries['correlate'] / measured:.1f} queries"
        f" + {count.scopes['correlate'] / measured:.1f} row-scope settings + 1 commit (raw SQL: 3 statements + 1 commit)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100, help="instances per method and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--external-tasks", type=int, default=200, help="external task round trips per round (0: skip them)"
    )
    parser.add_argument("--only-external-tasks", action="store_true", help="measure the external tasks only")
    parser.add_argument("--messages", type=int, default=100, help="message correlations per round (0: skip them)")
    parser.add_argument("--only-messages", action="store_true", help="measure the message correlations only")
    parser.add_argument(
        "--synchronous-commit",
        choices=("on", "off"),
        default="on",
        help="synchronous_commit of the bench database (default on; off: no disk flush per commit)",
    )
    args = parser.parse_args()
    ensure_database(args.database_url)
    set_synchronous_commit(args.database_url, args.synchronous_commit == "on")
    django_setup(args.database_url)
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", "--no-workflows", "--password", "bench-password-1", stdout=open(os.devnull, "w"))
    if args.external_tasks and not args.only_messages:
        report_external_tasks(args.external_tasks, args.rounds)
    if args.messages and not args.only_external_tasks:
        report_messages(args.messages, args.rounds)
    if args.only_external_tasks or args.only_messages:
        return 0
    n, completions = args.instances, 2 * args.instances
    count = StatementCount()
    rates: dict[str, list[tuple[float, float]]] = {"engine": [], "engine, spec per step": [], "service": []}
    # A shared machine's speed drifts within a minute: each round measures every method, in an order that
    # rotates, and the ratios are taken within a round.
    methods = list(rates)
    for round_number in range(args.rounds):
        for method in methods[round_number % 3 :] + methods[: round_number % 3]:
            if method == "service":
                cleanup()
                try:
                    start_seconds, complete_seconds = run_services(n, count)
                finally:
                    cleanup()
            else:
                start_seconds, complete_seconds = run_engine_alone(n, spec_loaded_once=method == "engine")
            rates[method].append((n / start_seconds, completions / complete_seconds))
    print(
        f"{args.rounds} rounds of {n} instances of onecms_case_handling per method, 2 task completions each;"
        f" synchronous_commit={args.synchronous_commit};"
        f" business-calendar cache {'on' if settings.WORK_CALENDAR_CACHE_SECONDS else 'off (no REDIS_URL)'}"
    )
    print(f"{'method':22} {'starts/s':>10} {'completions/s':>15}   (medians over the rounds)")
    for method, samples in rates.items():
        starts = statistics.median(s for s, _ in samples)
        done = statistics.median(c for _, c in samples)
        print(f"{method:22} {starts:10.1f} {done:15.1f}")
    for baseline in ("engine", "engine, spec per step"):
        ratios = [svc[1] / eng[1] for svc, eng in zip(rates["service"], rates[baseline], strict=True)]
        starts = [svc[0] / eng[0] for svc, eng in zip(rates["service"], rates[baseline], strict=True)]
        print(
            f"service / {baseline}: completions {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}–"
            f"{max(ratios):.2f}), starts {statistics.median(starts):.2f}"
        )
    measured = args.rounds * completions
    phases = ("lookup", "claim", "complete")
    queries, scopes = sum(count.queries.values()), sum(count.scopes.values())
    print(
        f"statements per completion: {queries / measured:.1f} queries"
        f" ({', '.join(f'{p} {count.queries[p] / measured:.1f}' for p in phases)})"
        f" + {scopes / measured:.1f} row-scope settings + 2 commits"
    )
    ratio = statistics.median(svc[1] / eng[1] for svc, eng in zip(rates["service"], rates["engine"], strict=True))
    verdict = "met" if ratio >= TARGET_COMPLETIONS_RATIO else "missed"
    print(f"target (issue 24) completions service/engine >= {TARGET_COMPLETIONS_RATIO}: {verdict} ({ratio:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
