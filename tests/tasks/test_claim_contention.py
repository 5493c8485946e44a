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
from tests.tasks.test_concurrency import run_in_threads

CLAIM = "SELECT task_id, queue_name FROM flowable.claim_next_for_user(%s, %s::text[], NULL)"


def add_task(queue_name, name, priority):
    with transaction.atomic():
        return services.task_insert(queue=WorkflowQueue.objects.get(queue_name=queue_name), name=name, priority=priority)


@pytest.fixture
def alice(committed_db, test_database_url):
    user = User.objects.get(username="alice")
    with psycopg.connect(test_database_url, autocommit=True) as conn:
        conn.execute("SELECT * FROM entitlements.work_access_for(%s)", [user.pk])  # her access answer, remembered
    return user


def test_a_claim_passes_over_a_queue_another_claim_is_writing(alice, test_database_url):
    first_best = add_task("intake", "intake best", 90)
    add_task("intake", "intake second", 80)
    add_task("triage", "triage best", 10)  # locked by the first claim too: it holds each queue's best task
    other = add_task("triage", "triage second", 5)
    with psycopg.connect(test_database_url) as first, psycopg.connect(test_database_url, autocommit=True) as second:
        # The first claim has taken intake's best task and holds intake's row until it commits.
        assert first.execute(CLAIM, [alice.pk, ["intake", "triage"]]).fetchone() == (first_best.pk, "intake")
        second.execute("SET lock_timeout = '2s'")
        # intake's second task ranks above triage's, but waiting for intake would queue behind the first claim.
        assert second.execute(CLAIM, [alice.pk, ["intake", "triage"]]).fetchone() == (other.pk, "triage")
        first.commit()
    loads = dict(WorkflowQueue.objects.filter(queue_name__in=["intake", "triage"]).values_list("queue_name", "current_load"))
    assert loads == {"intake": 1, "triage": 1}


def test_a_claim_waits_when_every_candidate_queue_is_busy(alice, test_database_url):
    first_best = add_task("intake", "intake best", 90)
    second_best = add_task("intake", "intake second", 80)
    outcome = {}
    with psycopg.connect(test_database_url) as first, psycopg.connect(test_database_url, autocommit=True) as second:
        assert first.execute(CLAIM, [alice.pk, ["intake"]]).fetchone() == (first_best.pk, "intake")
        waiter_pid = second.info.backend_pid

        def claim():
            try:
                outcome["row"] = second.execute(CLAIM, [alice.pk, ["intake"]]).fetchone()
            except Exception as exc:  # reported by the assertion below
                outcome["error"] = exc

        thread = threading.Thread(target=claim)
        thread.start()
        with psycopg.connect(test_database_url, autocommit=True) as observer:
            for _ in range(200):
                waiting = observer.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [waiter_pid]).fetchone()[0]
                if waiting == "Lock":
                    break
                time.sleep(0.01)
        assert waiting == "Lock"  # waiting for intake's row, not answering "nothing to claim"
        first.commit()
        thread.join(timeout=10)
    assert outcome == {"row": (second_best.pk, "intake")}
    assert WorkflowQueue.objects.get(queue_name="intake").current_load == 2


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
