"""Express lanes: tasks at or above a queue's threshold are claimed first, within the queue's share of claims."""

import pytest
from django.db import connection

from entitlements.models import User
from queues.models import WorkflowQueue
from tasks import services
from tasks.models import WorkflowTask
from tests.tasks.test_concurrency import run_in_threads

CLAIMERS = 16
EXPRESS, OTHER = 95, 50  # priorities on either side of THRESHOLD
THRESHOLD = 90
SHARE_PERCENT = 25


def express_lane(queue_name="intake", *, threshold=THRESHOLD, share=SHARE_PERCENT, **fields):
    WorkflowQueue.objects.filter(queue_name=queue_name).update(
        express_threshold=threshold, express_share_percent=share, express_credit=100, **fields
    )


def insert_tasks(queue_name: str, priorities: list[int]) -> None:
    """OPEN tasks in the order given, each a second younger than the one before."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
                escalation_level, required_skills, variables, form_fields, created_at, updated_at,
                task_definition_key, delegation_state)
            SELECT 'lane ' || g, '', %s, '{}', 'OPEN', p, 0, '{}', '{}', '[]',
                   now() - ((%s - g) || ' seconds')::interval, now(), '', ''
              FROM unnest(%s::int[]) WITH ORDINALITY AS x(p, g)
            """,
            [queue_name, len(priorities), priorities],
        )


def lanes_in_claim_order(queue_name: str) -> list[bool]:
    """For each claimed task of the queue, in the order the claims took the queue's row: express or not."""
    rows = WorkflowTask.objects.filter(queue_id=queue_name, status="CLAIMED").order_by("claimed_at", "task_id")
    return [priority >= THRESHOLD for priority in rows.values_list("effective_priority", flat=True)]


def express_bound(claims: int, share=SHARE_PERCENT) -> float:
    """The most express claims among the first `claims`: the credit starts full (one claim) and each claim adds
    the share."""
    return 1 + claims * share / 100


@pytest.mark.django_db
def test_claim_next_takes_express_tasks_first_while_the_share_allows(caseworker_alice, make_task):
    express_lane()
    for index in range(6):
        make_task("intake", name=f"express-{index}", priority=EXPRESS)
    for index in range(12):
        make_task("intake", name=f"other-{index}", priority=OTHER)

    names = [services.task_claim_next(user=caseworker_alice, queue_names=["intake"]).name for _ in range(12)]

    # The credit starts full; each claim adds 25 and an express claim spends 100: one express claim in four.
    lanes = ["E" if name.startswith("express") else "o" for name in names]
    assert "".join(lanes) == "EooEoooEoooE"
    assert names[0] == "express-0" and names[1] == "other-0"  # each lane in its own priority-then-age order


@pytest.mark.django_db
def test_without_an_express_lane_high_priority_tasks_are_all_claimed_first(caseworker_alice, make_task):
    for index in range(3):
        make_task("intake", name=f"express-{index}", priority=EXPRESS)
        make_task("intake", name=f"other-{index}", priority=OTHER)

    names = [services.task_claim_next(user=caseworker_alice, queue_names=["intake"]).name for _ in range(4)]

    assert names == ["express-0", "express-1", "express-2", "other-0"]


@pytest.mark.django_db
def test_express_tasks_are_claimed_past_the_share_when_nothing_else_waits(caseworker_alice, make_task):
    express_lane()
    for index in range(4):
        make_task("intake", name=f"express-{index}", priority=EXPRESS)

    names = [services.task_claim_next(user=caseworker_alice, queue_names=["intake"]).name for _ in range(4)]

    assert names == ["express-0", "express-1", "express-2", "express-3"]
    assert WorkflowQueue.objects.get(queue_name="intake").express_credit == 0


@pytest.mark.django_db
def test_a_task_aged_over_the_threshold_joins_the_express_lane(caseworker_alice, make_task):
    express_lane()
    make_task("intake", name="plain", priority=OTHER + 1)
    aged = make_task("intake", name="aged", priority=OTHER)
    WorkflowTask.objects.filter(pk=aged.pk).update(priority_boost=THRESHOLD - OTHER)

    assert services.task_claim_next(user=caseworker_alice, queue_names=["intake"]).name == "aged"


@pytest.mark.slow
def test_express_claims_stay_within_the_share_under_16_concurrent_claimers(committed_db):
    WorkflowQueue.objects.filter(queue_name="intake").update(max_capacity=1000, current_load=0)
    express_lane("intake")
    insert_tasks("intake", [EXPRESS, OTHER] * 100)  # 200 tasks, half of them express, interleaved in age
    claimers = [User.objects.get(username=name) for name in ("alice", "carol")]
    claimed_by_thread = [[] for _ in range(CLAIMERS)]

    def claimer(index):
        def run():
            user = claimers[index % len(claimers)]
            while (task := services.task_claim_next(user=user, queue_names=["intake"])) is not None:
                claimed_by_thread[index].append(task.task_id)

        return run

    errors = run_in_threads([claimer(i) for i in range(CLAIMERS)])

    assert errors == []
    claimed = [task_id for ids in claimed_by_thread for task_id in ids]
    assert len(claimed) == len(set(claimed)) == 200  # every task once, none twice
    lanes = lanes_in_claim_order("intake")
    assert len(lanes) == 200
    # The bound holds exactly while other tasks wait for every claimer: each claimer holds at most one of them,
    # so with CLAIMERS of them unclaimed none takes an express task for want of another.
    others_left = 100
    express = 0
    for claims, is_express in enumerate(lanes, start=1):
        if others_left < CLAIMERS:
            break
        express += is_express
        others_left -= not is_express
        assert express <= express_bound(claims), (claims, express, "".join("E" if e else "o" for e in lanes))
    # Express tasks still moved at their share while the others waited.
    assert express >= express_bound(claims) / 2, (claims, express)
    queue = WorkflowQueue.objects.get(queue_name="intake")
    assert queue.current_load == 200
