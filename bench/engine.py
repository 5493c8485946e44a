"""Workflow engine benchmark: process starts and task completions per second, with and without the database.

In one run, on the demo model (tasks/bpmn/onecms_case_handling.bpmn):

  engine    tasks.bpmn.engine alone (SpiffWorkflow, no database): start an instance, then complete intake and triage,
            carrying the serialised state between steps as the services do — the baseline;
  service   tasks.bpmn.workflows.process_start + tasks.services.task_claim/task_complete on PostgreSQL: the same steps,
            with locking, task rows, history, queue loads and the engine state stored after each step.

It prints starts/s and completions/s for both and the ratios service/engine.

    .venv/bin/python bench/engine.py                     # 200 instances
    .venv/bin/python bench/engine.py --instances 1000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from common import django_setup, ensure_database  # noqa: E402  (bench/ is on sys.path when run)

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/workflow_bench"
MODEL = PROJECT_DIR / "tasks" / "bpmn" / "onecms_case_handling.bpmn"
INTAKE = {"received_on": "2026-11-02", "received_via": "EMAIL"}
TRIAGE = {"allegation_type": "MISCONDUCT"}


def run_engine_alone(instances: int) -> tuple[float, float]:
    """Seconds spent starting instances, and completing two tasks of each, with the engine only."""
    import json

    from tasks.bpmn import engine

    spec = engine.parse_definition(bpmn_xml=MODEL.read_text()).spec
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


def run_services(instances: int) -> tuple[float, float]:
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
    for instance_id in ids:
        for variables in (INTAKE, TRIAGE):
            task = (
                WorkflowTask.objects.filter(process_instance_id=instance_id, status="OPEN").order_by("task_id").first()
            )
            task_claim(user=alice, task_id=task.pk)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    ensure_database(args.database_url)
    django_setup(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", "--no-workflows", "--password", "bench-password-1", stdout=open(os.devnull, "w"))
    n = args.instances
    engine_start, engine_complete = run_engine_alone(n)
    cleanup()
    try:
        service_start, service_complete = run_services(n)
    finally:
        cleanup()
    completions = 2 * n
    rows = [
        ("engine", n / engine_start, completions / engine_complete),
        ("service", n / service_start, completions / service_complete),
    ]
    print(f"{n} instances of onecms_case_handling, 2 task completions each")
    print(f"{'method':8} {'starts/s':>10} {'completions/s':>15}")
    for label, starts, done in rows:
        print(f"{label:8} {starts:10.1f} {done:15.1f}")
    print(f"ratio service/engine: starts {rows[1][1] / rows[0][1]:.2f}, completions {rows[1][2] / rows[0][2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
