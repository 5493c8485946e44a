"""Concurrent claims of the same queue: passed over rather than waited for, capacity never exceeded."""

import threading
import time

import psycopg
import pytest
from django.db import transaction

from entitlements.models import User
from queues.models import WorkflowQueue
from tasks import services
from tasks.models import WorkflowTask
from tests.roles import admin_connect
from tests.tasks.test_concurrency import run_in_threads

CLAIM = "SELECT task_id, queue_name FROM flowable.claim_next_for_user(%s, %s::text[], NULL)"


def server_pid(conn) -> int:
    """The server session of `conn`, which is inside a transaction: behind PgBouncer a client's own backend pid is
    not a server session's, but a transaction keeps one session until it ends."""
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def add_task(queue_name, name, priority):
    with transaction.atomic():
        return services.task_insert(
            queue=WorkflowQueue.objects.get(queue_name=queue_name), name=name, priority=priority
        )


@pytest.fixture
def alice(committed_db, test_database_url):
    user = User.objects.get(username="alice")
    with psycopg.connect(test_database_url, autocommit=True) as conn:
        conn.execute("SELECT * FROM entitlements.work_access_for(%s)", [user.pk])  # her access answer, remembered
    return user


def test_a_claim_passes_over_a_queue_another_claim_is_writing(alice, test_database_url):
    first_best = add_task("intake", "intake best", 90)
    add_task("intake", "intake second", 80)
    triage_best = add_task("triage", "triage best", 10)  # the first claim read it, but did not lock it
    add_task("triage", "triage second", 5)
    with psycopg.connect(test_database_url) as first, psycopg.connect(test_database_url, autocommit=True) as second:
        # The first claim has taken intake's best task and holds intake's row until it commits.
        assert first.execute(CLAIM, [alice.pk, ["intake", "triage"]]).fetchone() == (first_best.pk, "intake")
        with second.transaction():
            second.execute("SET LOCAL lock_timeout = '2s'")
            # intake's second task ranks above triage's, but waiting for intake would queue behind the first claim.
            assert second.execute(CLAIM, [alice.pk, ["intake", "triage"]]).fetchone() == (triage_best.pk, "triage")
        first.commit()
    loads = dict(
        WorkflowQueue.objects.filter(queue_name__in=["intake", "triage"]).values_list("queue_name", "current_load")
    )
    assert loads == {"intake": 1, "triage": 1}


def lockable_open_tasks(observer, queue_names) -> set[int]:
    """The OPEN tasks of the queues that another transaction could lock now: a claim in progress holds the others."""
    with observer.transaction():
        rows = observer.execute(
            "SELECT task_id FROM flowable.workflow_tasks WHERE queue_name = ANY(%s) AND status = 'OPEN' "
            "FOR UPDATE SKIP LOCKED",
            [queue_names],
        ).fetchall()
    return {task_id for (task_id,) in rows}


def test_a_claim_locks_the_one_task_it_takes_not_the_head_of_every_queue(alice, test_database_url):
    tasks = [
        add_task("intake", "intake best", 90),
        add_task("intake", "intake second", 80),
        add_task("triage", "triage best", 70),
        add_task("triage", "triage second", 60),
    ]
    with psycopg.connect(test_database_url) as claimer, admin_connect(autocommit=True) as observer:
        claimed, _ = claimer.execute(CLAIM, [alice.pk, ["intake", "triage"]]).fetchone()
        # Still in the claim's transaction: every task but the claimed one can be locked by someone else.
        assert lockable_open_tasks(observer, ["intake", "triage"]) == {t.pk for t in tasks} - {claimed}
        claimer.commit()
    assert claimed == tasks[0].pk


def test_a_head_another_transaction_holds_is_passed_for_the_next_task_of_its_queue(alice, test_database_url):
    head = add_task("intake", "intake best", 90)
    second = add_task("intake", "intake second", 80)
    add_task("triage", "triage best", 70)
    with admin_connect() as holder, psycopg.connect(test_database_url, autocommit=True) as claimer:
        # Someone holds intake's head (a completion in progress, say): the claim reads it as the head, cannot lock
        # it, and takes the best task of the same queue that no one holds, without waiting.
        holder.execute("SELECT 1 FROM flowable.workflow_tasks WHERE task_id = %s FOR UPDATE", [head.pk])
        with claimer.transaction():
            claimer.execute("SET LOCAL lock_timeout = '2s'")
            assert claimer.execute(CLAIM, [alice.pk, ["intake", "triage"]]).fetchone() == (second.pk, "intake")
        holder.rollback()
    assert WorkflowTask.objects.get(pk=head.pk).status == "OPEN"


def test_a_claim_waits_when_every_candidate_queue_is_busy(alice, test_database_url):
    first_best = add_task("intake", "intake best", 90)
    second_best = add_task("intake", "intake second", 80)
    outcome = {}
    with psycopg.connect(test_database_url) as first, psycopg.connect(test_database_url, autocommit=True) as second:
        assert first.execute(CLAIM, [alice.pk, ["intake"]]).fetchone() == (first_best.pk, "intake")

        def claim():
            try:
                outcome["row"] = second.execute(CLAIM, [alice.pk, ["intake"]]).fetchone()
            except Exception as exc:  # reported by the assertion below
                outcome["error"] = exc

        thread = threading.Thread(target=claim)
        thread.start()
        with admin_connect(autocommit=True) as observer:
            # Waiting for intake's row, not answering "nothing to claim".
            waiting_for(observer, server_pid(first))
        first.commit()
        thread.join(timeout=10)
    assert outcome == {"row": (second_best.pk, "intake")}
    assert WorkflowQueue.objects.get(queue_name="intake").current_load == 2


def waiting_for(observer, holder_pid: int) -> int:
    """Poll until a session waits for a lock that session `holder_pid` holds; that session's pid."""
    for _ in range(500):
        row = observer.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [holder_pid]
        ).fetchone()
        if row:
            return row[0]
        time.sleep(0.01)
    raise AssertionError(f"no session waited for backend {holder_pid}")


def wait_until_blocked(observer, pid, *, not_by=None):
    """Poll until backend `pid` waits for a lock (held by someone other than `not_by`); its blockers."""
    for _ in range(500):
        blockers = observer.execute("SELECT pg_blocking_pids(%s)", [pid]).fetchone()[0]
        if blockers and not_by not in blockers:
            return blockers
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited (blockers {blockers})")


def test_claims_waiting_on_full_queues_do_not_deadlock(alice, test_database_url):
    """Claims in the waiting pass that find queues full after waiting for them end with nothing, not a deadlock.

    A claim that waited for a queue row and then found the queue full keeps that row locked until it ends (PostgreSQL
    keeps a lock taken before the recheck). Here A (intake's and triage's best tasks, intake first) and B (triage's
    new best task and intake's second, triage first: a more urgent triage task arrived after A ranked the queues)
    wait for two transactions that fill the queues; A ends up waiting for triage behind B while holding intake. B
    then skips intake without waiting: its new snapshot sees intake full, and no one can make it less full while A
    holds the row, so the kept lock never closes a cycle.
    """
    add_task("intake", "intake best", 10)
    add_task("intake", "intake second", 1)
    add_task("triage", "triage best", 8)
    add_task("triage", "triage second", 5)
    fill = "UPDATE queues.workflow_queues SET current_load = max_capacity WHERE queue_name = %s"
    outcome = {}
    with (
        psycopg.connect(test_database_url) as intake_filler,
        psycopg.connect(test_database_url) as triage_filler,
        psycopg.connect(test_database_url, autocommit=True) as a,
        psycopg.connect(test_database_url, autocommit=True) as b,
        admin_connect(autocommit=True) as observer,
    ):
        intake_filler.execute(fill, ["intake"])
        triage_filler.execute(fill, ["triage"])
        intake_filler_pid, triage_filler_pid = server_pid(intake_filler), server_pid(triage_filler)

        def claim(name, conn):
            try:
                outcome[name] = conn.execute(CLAIM, [alice.pk, ["intake", "triage"]]).fetchall()
            except Exception as exc:  # reported by the assertion below
                outcome[name] = exc

        threads = {name: threading.Thread(target=claim, args=(name, conn)) for name, conn in (("a", a), ("b", b))}
        threads["a"].start()
        a_pid = waiting_for(observer, intake_filler_pid)
        assert wait_until_blocked(observer, a_pid) == [intake_filler_pid]
        add_task("triage", "triage urgent", 20)  # B ranks triage first
        threads["b"].start()
        b_pid = waiting_for(observer, triage_filler_pid)
        assert wait_until_blocked(observer, b_pid) == [triage_filler_pid]
        intake_filler.commit()
        # A found intake full, kept its row and now waits for triage, behind B.
        assert wait_until_blocked(observer, a_pid, not_by=intake_filler_pid) == [b_pid]
        triage_filler.commit()
        for thread in threads.values():
            thread.join(timeout=30)
    assert outcome == {"a": [], "b": []}  # both queues are full: nothing to claim, and no error
    queues = WorkflowQueue.objects.filter(queue_name__in=["intake", "triage"])
    assert all(queue.current_load == queue.max_capacity for queue in queues)
    assert not WorkflowTask.objects.filter(queue__in=queues, status="CLAIMED").exists()


@pytest.mark.slow
def test_concurrent_claims_never_push_a_queue_past_its_capacity(alice):
    capacity = 25
    queue = WorkflowQueue.objects.get(queue_name="intake")
    original_capacity = queue.max_capacity
    WorkflowQueue.objects.filter(pk=queue.pk).update(max_capacity=capacity)
    try:
        for n in range(200):
            add_task("intake", f"bulk {n}", n % 100)
        claimed = []

        def claimer():
            while (task := services.task_claim_next(user=alice, queue_names=["intake"])) is not None:
                claimed.append(task.task_id)

        assert run_in_threads([claimer] * 16) == []
        assert len(claimed) == capacity
        assert WorkflowTask.objects.filter(queue=queue, status="CLAIMED").count() == capacity
        assert WorkflowQueue.objects.get(pk=queue.pk).current_load == capacity
    finally:
        WorkflowQueue.objects.filter(pk=queue.pk).update(max_capacity=original_capacity)
