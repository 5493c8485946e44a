"""Real threads on PostgreSQL: no task is claimed twice, and racing transitions have exactly one winner."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from core.errors import Conflict
from entitlements.models import User
from queues.models import WorkflowQueue
from tasks import services
from tasks.models import TaskHistory, WorkflowTask
from tests.roles import analyze

CLAIMERS = 32
TASKS = 5000


def run_in_threads(targets):
    errors = []

    def wrap(target):
        def run():
            try:
                target()
            except BaseException as exc:  # reported to the test below
                errors.append(exc)
            finally:
                connections.close_all()

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return errors


def insert_open_tasks(count, queues):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
                escalation_level, required_skills, variables, form_fields, created_at, updated_at,
                task_definition_key, delegation_state)
            SELECT 'bulk ' || g, '', (%s::text[])[1 + g %% %s], '{}', 'OPEN', g %% 100, 0, '{}', '{}', '[]',
                   now() - (g || ' seconds')::interval, now(), '', ''
              FROM generate_series(1, %s) AS g
            """,
            [queues, len(queues), count],
        )


def open_tasks_in_new_queues(count, new_queues, existing_queues=()):
    """New queues, `count` OPEN tasks spread over them (and any existing queues named), then ANALYZE: the plan
    tests' backlog, as the planner sees it in production."""
    WorkflowQueue.objects.bulk_create([WorkflowQueue(queue_name=name, display_name=name) for name in new_queues])
    insert_open_tasks(count, [*existing_queues, *new_queues])
    with connection.cursor() as cursor:
        analyze(cursor)


@pytest.mark.slow
def test_32_concurrent_claimers_claim_every_task_exactly_once(committed_db):
    queues = ["intake", "triage"]
    WorkflowQueue.objects.filter(queue_name__in=queues).update(max_capacity=TASKS)
    insert_open_tasks(TASKS, queues)
    claimers = [User.objects.get(username=name) for name in ("alice", "carol")]
    claimed_by_thread = [[] for _ in range(CLAIMERS)]

    def claimer(index):
        def run():
            user = claimers[index % len(claimers)]
            while (task := services.task_claim_next(user=user)) is not None:
                claimed_by_thread[index].append(task.task_id)

        return run

    errors = run_in_threads([claimer(i) for i in range(CLAIMERS)])
    assert errors == []
    claimed = [task_id for ids in claimed_by_thread for task_id in ids]
    assert len(claimed) == TASKS
    assert len(set(claimed)) == TASKS  # no task handed out twice
    assert WorkflowTask.objects.filter(status="OPEN").count() == 0
    history = Counter(TaskHistory.objects.filter(event_type="CLAIMED").values_list("task_id", flat=True))
    assert set(history.values()) == {1} and len(history) == TASKS
    for queue in WorkflowQueue.objects.filter(queue_name__in=queues):
        assert queue.current_load == WorkflowTask.objects.filter(queue=queue, status="CLAIMED").count()
    assert sum(1 for ids in claimed_by_thread if ids) > 1  # the work really was shared


@pytest.mark.parametrize("round_", range(5))
def test_complete_release_and_reassign_race_has_exactly_one_winner(committed_db, round_):
    alice = User.objects.get(username="alice")
    supervisor = User.objects.get(username="supervisor")
    with connection.cursor():
        pass
    from django.db import transaction

    with transaction.atomic():
        task = services.task_insert(queue=WorkflowQueue.objects.get(queue_name="triage"), name="contested")
    services.task_claim(user=alice, task_id=task.pk)
    barrier = threading.Barrier(3)
    outcomes = {}

    def attempt(name, action):
        def run():
            barrier.wait()
            try:
                action()
                outcomes[name] = "won"
            except Conflict:
                outcomes[name] = "409"

        return run

    errors = run_in_threads(
        [
            attempt("complete", lambda: services.task_complete(user=alice, task_id=task.pk)),
            attempt("release", lambda: services.task_release(user=alice, task_id=task.pk)),
            attempt(
                "reassign",
                lambda: services.task_reassign(
                    user=supervisor, task_id=task.pk, assignee="carol", expected_assignee="alice"
                ),
            ),
        ]
    )
    assert errors == []
    assert sorted(outcomes.values()) == ["409", "409", "won"], outcomes
    queue = WorkflowQueue.objects.get(queue_name="triage")
    assert queue.current_load == WorkflowTask.objects.filter(queue=queue, status="CLAIMED").count()
