"""A real Celery worker with beat (database scheduler) on the configured broker runs the SLA check."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from queues.models import WorkflowQueue
from tasks.models import TaskHistory, WorkflowTask
from tasks.services import task_insert

PROJECT = Path(__file__).resolve().parents[2]
RULES = [{"level": 1, "trigger": {"type": "overdue"}, "actions": {"raise_priority": 10}}]
WAIT_SECONDS = 90


def overdue_tasks(count):
    with transaction.atomic():
        queue = WorkflowQueue.objects.get(queue_name="triage")
        tasks = [task_insert(queue=queue, name=f"late {n}") for n in range(count)]
    WorkflowTask.objects.filter(pk__in=[t.pk for t in tasks]).update(due_date=timezone.now() - timedelta(hours=1))
    return [t.pk for t in tasks]


def escalated(ids):
    return WorkflowTask.objects.filter(pk__in=ids, escalation_level=1).count()


def sla_checks_run():
    """How many SLA checks the worker has finished (each stores its result)."""
    from django_celery_results.models import TaskResult

    return TaskResult.objects.filter(task_name="workflow.sla_check", status="SUCCESS").count()


def wait_for(predicate, seconds=WAIT_SECONDS):
    """Poll until `predicate` holds (an event the worker causes); False if it never does within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


class Worker:
    def __init__(self, database_url, schedule_file=None):
        # The broker comes from the same settings as this process: CELERY_BROKER_URL if set, else the filesystem
        # broker under the same WORKFLOW_VAR_DIR. Without a schedule file the worker runs no beat.
        self.env = {**os.environ, "DATABASE_URL": database_url}
        self.schedule_file = schedule_file
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workflow_project",
                "worker",
                *(("--beat", "--schedule", str(self.schedule_file)) if self.schedule_file else ()),
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                "--pool",
                "solo",
                "-Q",
                "celery",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=PROJECT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        output = self.process.stdout.read() if self.process else ""
        return output


@pytest.fixture
def sla_every_second(committed_db):
    WorkflowQueue.objects.filter(queue_name="triage").update(escalation_rules=RULES)
    previously_enabled = list(PeriodicTask.objects.filter(enabled=True).values_list("pk", flat=True))
    PeriodicTask.objects.filter(pk__in=previously_enabled).update(enabled=False)
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    job = PeriodicTask.objects.create(
        name="test: SLA check every second", task="workflow.sla_check", interval=every_second
    )
    yield job
    job.delete()
    PeriodicTask.objects.filter(pk__in=previously_enabled).update(enabled=True)
    WorkflowQueue.objects.filter(queue_name="triage").update(escalation_rules=[])


@pytest.mark.slow
def test_worker_escalates_within_a_tick_and_catches_up_after_a_restart(sla_every_second, test_database_url, tmp_path):
    worker = Worker(test_database_url, tmp_path / "beat-schedule")
    first = overdue_tasks(1)
    worker.start()
    try:
        assert wait_for(lambda: escalated(first) == 1), worker.stop()[-3000:]
    finally:
        worker.stop()

    # Worker down: these fall overdue with nobody watching.
    missed = overdue_tasks(5)
    assert escalated(missed) == 0

    worker.start()
    try:
        assert wait_for(lambda: escalated(missed) == 5), worker.stop()[-3000:]
        runs = sla_checks_run()
        # Two more checks run over the same tasks (counted, not timed): nothing is escalated twice.
        assert wait_for(lambda: sla_checks_run() >= runs + 2), worker.stop()[-3000:]
    finally:
        worker.stop()
    per_task = TaskHistory.objects.filter(task_id__in=first + missed, event_type="ESCALATED").values_list(
        "task_id", flat=True
    )
    assert sorted(per_task) == sorted(first + missed)
    assert sla_checks_run() >= 3


def test_beat_writes_each_jobs_last_run_as_soon_as_it_sends_it(db):
    """admin → Periodic tasks shows "Last run" right after a job ran, not up to three minutes later."""
    from django_celery_beat.schedulers import DatabaseScheduler

    from workflow_project.celery import app

    scheduler = DatabaseScheduler(app=app, lazy=True)
    scheduler._tasks_since_sync, scheduler._last_sync = 1, time.monotonic()
    assert scheduler.should_sync()
