"""The one lock order (tasks/locks.py): services that lock the same rows wait for each other and never deadlock.

Real threads on PostgreSQL; the assertions are on outcomes and invariants (queue loads, history), never on time.
"""

import ast
import random
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connections, transaction
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound
from core.locks import LockQueryError, rows_for_update
from entitlements.models import User
from queues.models import WorkflowQueue
from tasks import services
from tasks.bpmn import workflows
from tasks.locks import tasks_for_update
from tasks.models import TaskHistory, TaskStatus, WorkflowTask
from tasks.selectors import task_for_user
from tasks.sla.escalation import escalate_overdue_tasks
from tests.roles import admin_connect
from tests.tasks.engine.documents import PARALLEL_FILE

ROOT = Path(__file__).resolve().parents[2]
APPS = ["cases", "entitlements", "queues", "tasks", "workflow_project", "core"]
ROUNDS = 4
TASKS_PER_ROUND = 12


def assert_loads_match_claimed_tasks():
    for queue in WorkflowQueue.objects.all():
        claimed = WorkflowTask.objects.filter(queue=queue, status=TaskStatus.CLAIMED).count()
        assert queue.current_load == claimed, (queue.queue_name, queue.current_load, claimed)


WAITING_SESSIONS_SQL = """
SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0
"""


def wait_until_waiting(observer, sessions: int) -> None:
    """Poll until `sessions` sessions of the test database wait for a lock (a state the test waits for, not a length
    of time). Counted, not named by pid: behind PgBouncer a client's backend pid is not its server session's."""
    for _ in range(3000):
        if observer.execute(WAITING_SESSIONS_SQL).fetchone()[0] >= sessions:
            return
        time.sleep(0.01)
    raise AssertionError(f"{sessions} session(s) never waited for a lock")


def in_thread(name, action, results):
    def run():
        try:
            action()
            results[name] = "ok"
        except BaseException as exc:  # reported by the test's assertions
            results[name] = repr(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def insert_task(queue_name, name, **fields):
    with transaction.atomic():
        return services.task_insert(queue=WorkflowQueue.objects.get(queue_name=queue_name), name=name, **fields)


# --- where locks are taken ---------------------------------------------------------------------------------------


def app_modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_only_the_lock_modules_call_select_for_update():
    callers = []
    for path in app_modules():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "select_for_update" and path.name != "locks.py":
                callers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert callers == [], "lock rows through the app's locks.py (tasks/locks.py sets out the order)"


def test_a_locking_read_that_joins_is_refused(db):
    with pytest.raises(LockQueryError):
        rows_for_update(WorkflowTask.objects.select_related("queue"))
    with pytest.raises(LockQueryError):
        rows_for_update(WorkflowTask.objects.filter(queue__max_capacity__gt=0))


def test_a_locking_read_takes_waiting_locks_in_primary_key_order(db):
    sql = str(tasks_for_update(WorkflowTask.objects.filter(status="OPEN")).query)
    assert sql.endswith('ORDER BY "flowable"."workflow_tasks"."task_id" ASC FOR UPDATE')
    skipping = tasks_for_update(WorkflowTask.objects.order_by("-priority"), skip_locked=True)
    assert str(skipping.query).endswith('ORDER BY "flowable"."workflow_tasks"."priority" DESC FOR UPDATE SKIP LOCKED')


@pytest.mark.usefixtures("committed_db")
def test_locking_a_task_for_a_user_leaves_its_queue_unlocked(test_database_url):
    """What select_for_update(of=("self",)) would say: the access rule's subquery reads queues, it locks none."""
    alice = User.objects.get(username="alice")
    task = insert_task("intake", "locked")
    with transaction.atomic():
        task_for_user(user=alice, task_id=task.pk, for_update=True)
        with admin_connect(autocommit=True) as other:  # sees every row, as no application session would
            queue = other.execute(
                "SELECT queue_name FROM queues.workflow_queues WHERE queue_name = 'intake' FOR UPDATE NOWAIT"
            ).fetchone()
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("SELECT 1 FROM flowable.workflow_tasks WHERE task_id = %s FOR UPDATE NOWAIT", [task.pk])
    assert queue == ("intake",)


# --- no deadlock -------------------------------------------------------------------------------------------------


def parallel_instance_with_claimed_tasks(supervisor, alice, business_key, queue_order):
    """A running instance holding two extra tasks claimed by alice, created (so in task_id order) in `queue_order`."""
    instance = workflows.process_start(
        user=supervisor, process_key="parallel_review", business_key=business_key, variables={"join_count": 0}
    )
    for queue_name in queue_order:
        task = insert_task(queue_name, queue_name, process_instance=instance)
        services.task_claim(user=alice, task_id=task.pk)
    return instance


@pytest.mark.usefixtures("committed_db")
def test_cancelling_two_instances_whose_claimed_tasks_sit_in_two_queues_in_opposite_orders_does_not_deadlock(
    test_database_url,
):
    """Closing tasks changes their queues' loads. Each cancel now locks all those queues in one statement in
    queue_id order; before, it updated them task by task, and these two cancels deadlocked.

    A third transaction holds intake while the first cancel queues for it and the second takes what it can;
    when the third ends, both cancels must finish."""
    supervisor, alice = User.objects.get(username="supervisor"), User.objects.get(username="alice")
    workflows.definition_deploy(user=supervisor, bpmn_xml=PARALLEL_FILE.read_text())
    first = parallel_instance_with_claimed_tasks(supervisor, alice, "LOCK-1", ["intake", "triage"])
    second = parallel_instance_with_claimed_tasks(supervisor, alice, "LOCK-2", ["triage", "intake"])
    results = {}
    with psycopg.connect(test_database_url) as holder, admin_connect(autocommit=True) as observer:
        holder.execute("SELECT 1 FROM queues.workflow_queues WHERE queue_name = 'intake' FOR UPDATE")
        threads = [
            in_thread("first", lambda: workflows.process_cancel(user=supervisor, process_instance_id=first.pk), results)
        ]
        wait_until_waiting(observer, 1)
        threads.append(
            in_thread(
                "second", lambda: workflows.process_cancel(user=supervisor, process_instance_id=second.pk), results
            )
        )
        wait_until_waiting(observer, 2)
        holder.commit()
        for thread in threads:
            thread.join(timeout=120)
    assert results == {"first": "ok", "second": "ok"}
    assert set(WorkflowTask.objects.filter(process_instance__in=[first, second]).values_list("status", flat=True)) == {
        TaskStatus.CANCELLED
    }
    assert_loads_match_claimed_tasks()


SWEEP_RULES = [
    {"level": 1, "trigger": {"type": "overdue"}, "actions": {"raise_priority": 5, "move_to_queue": "triage"}},
    {"level": 2, "trigger": {"type": "overdue"}, "actions": {"reassign_to_supervisor": True}},
]


@pytest.fixture
def intake_escalates_to_triage(committed_db):
    WorkflowQueue.objects.filter(queue_name="intake").update(escalation_rules=SWEEP_RULES)
    WorkflowQueue.objects.filter(queue_name="triage").update(escalation_rules=[{**SWEEP_RULES[1], "level": 1}])
    yield
    WorkflowQueue.objects.filter(queue_name__in=["intake", "triage"]).update(escalation_rules=[])


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_complete_reassign_move_rebalance_and_the_sweep_on_the_same_tasks_never_deadlock(
    intake_escalates_to_triage,
    round_,
):
    """Every service that used to lock these rows in its own order runs at once on the same tasks: the only
    failures allowed are the domain's (409, 404, 400 for a task that changed under it), and afterwards each
    queue's load equals its claimed tasks and every finished task was finished once."""
    alice, carol, supervisor = (User.objects.get(username=n) for n in ("alice", "carol", "supervisor"))
    WorkflowQueue.objects.filter(queue_name="intake").update(max_capacity=TASKS_PER_ROUND // 2)
    ids = [insert_task("intake" if n % 3 else "triage", f"contested {n}").pk for n in range(TASKS_PER_ROUND)]
    for task_id in ids[: TASKS_PER_ROUND // 2]:
        services.task_claim(user=alice, task_id=task_id)
    WorkflowTask.objects.filter(pk__in=ids[::2]).update(due_date=timezone.now() - timedelta(hours=1))
    shuffled = random.Random(round_)

    def each(action, order):
        def run():
            for task_id in order:
                try:
                    action(task_id)
                except (Conflict, NotFound, InvalidInput):
                    pass  # lost the race to another service: the domain's answer, not a failure

        return run

    operations = {
        "complete": each(lambda t: services.task_complete(user=alice, task_id=t), ids),
        "reassign": each(lambda t: services.task_reassign(user=supervisor, task_id=t, assignee="carol"), ids[::-1]),
        "move": each(
            lambda t: services.task_move(user=supervisor, task_id=t, queue_name="triage"),
            shuffled.sample(ids, len(ids)),
        ),
        "claim": each(lambda t: services.task_claim(user=carol, task_id=t), shuffled.sample(ids, len(ids))),
        "sweep": lambda: [escalate_overdue_tasks() for _ in range(3)],
        "rebalance": lambda: [services.rebalance_queue_loads() for _ in range(3)],
    }
    barrier = threading.Barrier(len(operations))
    results = {}

    def after_barrier(operation):
        return lambda: (barrier.wait(), operation())

    threads = [in_thread(name, after_barrier(op), results) for name, op in operations.items()]
    for thread in threads:
        thread.join(timeout=300)

    assert results == {name: "ok" for name in operations}
    assert_loads_match_claimed_tasks()
    for task in WorkflowTask.objects.filter(pk__in=ids):
        completions = TaskHistory.objects.filter(task=task, event_type="COMPLETED").count()
        assert completions == (1 if task.status == TaskStatus.COMPLETED else 0), task.pk
