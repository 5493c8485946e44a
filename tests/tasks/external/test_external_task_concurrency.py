"""Many workers at once on PostgreSQL (real commits, threads with their own connections): each item locked once and
completed once; a long-polling fetch is woken by the NOTIFY of an item's commit."""

import threading
import time
from collections import Counter

from tasks.external import services
from tasks.external.services import TopicRequest
from tasks.external.wakeups import WAKEUPS
from tasks.models import ExternalTask, ExternalTaskEventType, ExternalTaskHistory, ExternalTaskStatus, WorkflowTask
from tests.tasks.test_concurrency import run_in_threads

from .conftest import TOPIC, start_instances

WORKERS = 16
ITEMS = 2000
LOCK_MS = 300_000
# A correctness bound, loose on purpose (a shared machine); bench/ prints the real delay.
WAKE_UP_BOUND_SECONDS = 1.0


def fetch(worker, worker_id, *, max_tasks=10, wait_ms=0):
    return services.external_tasks_fetch_and_lock(
        user=worker,
        worker_id=worker_id,
        topics=[TopicRequest(topic_name=TOPIC, lock_duration_ms=LOCK_MS)],
        max_tasks=max_tasks,
        async_response_timeout_ms=wait_ms,
    )


def test_sixteen_workers_lock_each_of_two_thousand_items_once_and_complete_it_once(committed_setup):
    supervisor, worker = committed_setup
    start_instances(supervisor, ITEMS)
    locked_by: dict[int, list[str]] = {}
    completed: list[int] = []
    guard = threading.Lock()

    def work(worker_id):
        def run():
            while batch := fetch(worker, worker_id):
                for item in batch:
                    with guard:
                        locked_by.setdefault(item.external_task_id, []).append(worker_id)
                    services.external_task_complete(
                        user=worker, external_task_id=item.external_task_id, worker_id=worker_id
                    )
                    with guard:
                        completed.append(item.external_task_id)

        return run

    errors = run_in_threads([work(f"worker-{n}") for n in range(WORKERS)])

    assert errors == []
    assert len(locked_by) == ITEMS
    assert all(len(workers) == 1 for workers in locked_by.values())
    assert sorted(completed) == sorted(locked_by)
    assert ExternalTask.objects.filter(status=ExternalTaskStatus.COMPLETED).count() == ITEMS
    assert WorkflowTask.objects.filter(name="Review records").count() == ITEMS
    locks = Counter(
        ExternalTaskHistory.objects.filter(event_type=ExternalTaskEventType.LOCKED).values_list(
            "external_task_id", flat=True
        )
    )
    assert set(locks.values()) == {1}
    assert len({w for workers in locked_by.values() for w in workers}) > 1  # the work was shared


def test_a_long_poll_answers_soon_after_an_item_is_committed(committed_setup, settings):
    supervisor, worker = committed_setup
    # Its periodic look is far off: only the NOTIFY can explain an early answer.
    settings.EXTERNAL_TASK_LONG_POLL_RECHECK_SECONDS = 30
    settings.EXTERNAL_TASK_LONG_POLL_MAX_SECONDS = 30
    WAKEUPS.generation()  # the listener is up before anyone waits
    answer = {}

    def wait_for_work():
        answer["items"] = fetch(worker, "poller", wait_ms=20_000)
        answer["at"] = time.monotonic()

    errors = []
    poller = threading.Thread(target=lambda: errors.extend(run_in_threads([wait_for_work])))
    poller.start()
    time.sleep(0.5)  # let it find nothing and wait; if it has not yet, it finds the item at once
    start_instances(supervisor, 1, prefix="LP")
    committed_at = time.monotonic()
    poller.join(timeout=30)

    assert errors == []
    assert [item.business_key for item in answer["items"]] == ["LP-0"]
    delay = answer["at"] - committed_at
    assert delay < WAKE_UP_BOUND_SECONDS, delay


def test_a_long_poll_with_nothing_to_fetch_answers_empty_after_its_timeout(committed_setup):
    _, worker = committed_setup

    assert fetch(worker, "poller", wait_ms=200) == []
