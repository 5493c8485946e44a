"""Push routing: each strategy picks an eligible caseworker with room; full queues overflow; rebalancing moves work."""

import pytest

from entitlements.models import Skill
from entitlements.services import role_assignment_grant, role_save
from queues import routing
from queues.models import WorkflowQueue
from queues.services import queue_save
from tasks.models import WorkflowTask
from tasks.services import rebalance_queue_loads
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def push_queue(demo_org):
    def make(strategy, **fields):
        queue = queue_save(
            queue_name="push",
            display_name="Push",
            assignment_mode="PUSH",
            routing_strategy=strategy,
            max_capacity=fields.pop("max_capacity", 100),
            **fields,
        )
        role = role_save(role_code="push-worker", name="Push", queue_names=["push"], permissions=["view", "work"])
        workers = []
        for name in ("w1", "w2", "w3"):
            user = UserFactory(username=name, max_concurrent_tasks=2)
            role_assignment_grant(user=user, role=role)
            workers.append(user)
        return queue, workers

    return make


def assignees(tasks):
    return [t.assignee.username if t.assignee else None for t in tasks]


def test_round_robin_rotates_and_skips_users_at_capacity(push_queue, make_task):
    push_queue("ROUND_ROBIN")
    tasks = [make_task("push", name=f"t{n}") for n in range(7)]
    assert assignees(tasks) == ["w1", "w2", "w3", "w1", "w2", "w3", None]  # each holds 2 at most
    assert WorkflowQueue.objects.get(queue_name="push").current_load == 6


def test_least_loaded_prefers_the_user_with_fewest_claimed_tasks(push_queue, make_task):
    _, (w1, w2, w3) = push_queue("LEAST_LOADED")
    WorkflowTask.objects.create(name="held", queue_id="intake", status="CLAIMED", assignee=w1)
    WorkflowTask.objects.create(name="held", queue_id="intake", status="CLAIMED", assignee=w2)
    assert make_task("push").assignee == w3


def test_skill_based_gives_tasks_only_to_users_with_the_skills(push_queue, make_task):
    _, (w1, w2, w3) = push_queue("SKILL_BASED")
    w2.skills.add(Skill.objects.get(skill_code="fraud"))
    assert make_task("push", required_skills=["fraud"]).assignee == w2
    assert make_task("push", required_skills=["legal"]).assignee is None


def test_priority_weighted_sends_urgent_work_to_the_least_loaded(push_queue, make_task):
    _, (w1, w2, w3) = push_queue("PRIORITY_WEIGHTED")
    WorkflowTask.objects.create(name="held", queue_id="intake", status="CLAIMED", assignee=w1)
    WorkflowTask.objects.create(name="held", queue_id="intake", status="CLAIMED", assignee=w2)
    assert make_task("push", priority=90).assignee == w3  # urgent: least loaded
    assert make_task("push", priority=20).assignee == w1  # routine: rotation, w1 still has room


def test_full_push_queue_overflows_to_its_overflow_queue(push_queue, make_task):
    queue, _ = push_queue("ROUND_ROBIN", max_capacity=1)
    queue.overflow_queue = WorkflowQueue.objects.get(queue_name="triage")
    queue.save()
    first = make_task("push")
    second = make_task("push")
    assert (first.queue_id, second.queue_id) == ("push", "triage")
    # History comments are encrypted: compared once read, not filtered on.
    assert [h.comment for h in second.history.filter(event_type="CREATED")] == ["overflowed from push"]


def test_select_optimal_queue_picks_the_lowest_relative_load(demo_org):
    a = WorkflowQueue(queue_name="a", max_capacity=10, current_load=5)
    b = WorkflowQueue(queue_name="b", max_capacity=100, current_load=20)
    c = WorkflowQueue(queue_name="c", max_capacity=4, current_load=4)
    assert routing.select_optimal_queue([a, b, c]).queue_name == "b"
    assert routing.select_optimal_queue([c]) is None


def test_rebalance_moves_open_tasks_from_a_full_queue_to_its_overflow(make_task):
    intake = WorkflowQueue.objects.get(queue_name="intake")
    for n in range(3):
        make_task("intake", name=f"t{n}")
    WorkflowQueue.objects.filter(pk=intake.pk).update(current_load=0, max_capacity=0)
    assert rebalance_queue_loads(dry_run=True) == [{"from_queue": "intake", "to_queue": "triage", "tasks": 3}]
    assert WorkflowTask.objects.filter(queue_id="intake", status="OPEN").count() == 3
    rebalance_queue_loads()
    assert WorkflowTask.objects.filter(queue_id="triage", status="OPEN").count() == 3
    assert WorkflowTask.objects.filter(queue_id="intake").count() == 0


def test_rebalance_for_a_supervisor_touches_only_queues_they_supervise(make_task):
    from entitlements.models import Department
    from entitlements.services import role_assignment_grant as grant
    from entitlements.services import role_save as save

    make_task("intake", name="spill")
    WorkflowQueue.objects.filter(queue_name="intake").update(current_load=0, max_capacity=0)
    legal_head = UserFactory()
    grant(
        user=legal_head,
        role=save(
            role_code="legal-head",
            name="h",
            queue_names=[],
            permissions=["supervise"],
            department=Department.objects.get(dept_code="legal"),
        ),
    )
    assert rebalance_queue_loads(user=legal_head) == []
    assert WorkflowTask.objects.filter(queue_id="intake").count() == 1
    assert rebalance_queue_loads(queue_names=["triage"]) == []
    assert rebalance_queue_loads(queue_names=["intake"]) == [{"from_queue": "intake", "to_queue": "triage", "tasks": 1}]


def test_saving_a_queue_with_bad_escalation_rules_is_refused_naming_the_level(db):
    from core.errors import InvalidInput
    from queues.models import WorkflowQueue

    with pytest.raises(InvalidInput) as refused:
        queue_save(queue_name="badly-escalated", display_name="Bad", escalation_rules=[{"trigger": {"type": "later"}}])
    assert "level 1" in refused.value.fields["escalation_rules"][0]
    assert not WorkflowQueue.objects.filter(queue_name="badly-escalated").exists()
