"""Push routing records why: each strategy's candidates, with loads, capacities and skills, and why each was passed
over, on the task's history; overflow hops and assignment by hand too."""

import pytest

from entitlements.models import Skill
from entitlements.services import role_assignment_grant, role_save
from queues import routing
from queues.models import WorkflowQueue
from queues.services import queue_save
from tasks.models import WorkflowTask
from tasks.routing_explanation import routing_explained
from tasks.services import task_reassign
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def push_queue(demo_org):
    """A PUSH queue "push" worked by w1, w2, w3 (two tasks each at most)."""

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


def hold(user, count):
    """`count` claimed tasks elsewhere: the user's load, as routing counts it."""
    for n in range(count):
        WorkflowTask.objects.create(name=f"held {n}", queue_id="intake", status="CLAIMED", assignee=user)


def routing_of(task, event_type="CLAIMED"):
    return task.history.get(event_type=event_type).routing


def by_user(explained):
    return {
        c["user"]: (c["load"], c["capacity"], "chosen" if c.get("chosen") else c["reason"], c.get("missing"))
        for c in explained["candidates"]
    }


def test_round_robin_records_the_rotation_and_who_was_at_capacity(push_queue, make_task):
    queue, (w1, w2, w3) = push_queue("ROUND_ROBIN")
    hold(w2, 2)
    WorkflowQueue.objects.filter(pk=queue.pk).update(round_robin_cursor=w1.pk)

    task = make_task("push")

    explained = routing_of(task)
    assert task.assignee == w3
    assert (explained["strategy"], explained["rule"], explained["after"], explained["chosen"]) == (
        "ROUND_ROBIN",
        "next_in_rotation",
        "w1",
        "w3",
    )
    assert by_user(explained) == {
        "w1": (0, 2, "not_next_in_rotation", None),
        "w2": (2, 2, "at_capacity", None),
        "w3": (0, 2, "chosen", None),
    }
    words = routing_explained(explained)
    assert words.headline == "Routed to w3 by round-robin routing in push: next in the rotation after w1."
    assert "w2 (2/2): at capacity." in words.reasons


def test_least_loaded_records_each_load_against_the_chosen_one(push_queue, make_task):
    _, (w1, w2, w3) = push_queue("LEAST_LOADED")
    hold(w1, 1)
    hold(w2, 2)

    task = make_task("push")

    explained = routing_of(task)
    assert task.assignee == w3
    assert (explained["rule"], explained["chosen"], explained["omitted"]) == ("least_loaded", "w3", 0)
    assert by_user(explained) == {
        "w1": (1, 2, "more_loaded", None),
        "w2": (2, 2, "at_capacity", None),
        "w3": (0, 2, "chosen", None),
    }
    assert routing_explained(explained).headline == (
        "Routed to w3 by least loaded routing in push: the least loaded eligible caseworker (0/2)."
    )


def test_skill_based_records_the_skills_each_passed_over_user_lacks(push_queue, make_task):
    _, (w1, w2, w3) = push_queue("SKILL_BASED")
    fraud, legal = Skill.objects.get(skill_code="fraud"), Skill.objects.get(skill_code="legal")
    w1.skills.add(fraud)
    w3.skills.add(fraud, legal)
    hold(w3, 1)  # the only one with both skills, though not the least loaded

    task = make_task("push", required_skills=["fraud", "legal"])

    explained = routing_of(task)
    assert task.assignee == w3
    assert explained["required_skills"] == ["fraud", "legal"]
    assert by_user(explained) == {
        "w1": (0, 2, "missing_skills", ["legal"]),
        "w2": (0, 2, "missing_skills", ["fraud", "legal"]),
        "w3": (1, 2, "chosen", None),
    }
    assert "w2 (0/2): missing skills fraud, legal." in routing_explained(explained).reasons


def test_priority_weighted_records_which_rule_the_priority_chose(push_queue, make_task):
    _, (w1, w2, w3) = push_queue("PRIORITY_WEIGHTED")
    hold(w1, 1)
    hold(w2, 1)

    urgent = make_task("push", name="urgent", priority=90)
    routine = make_task("push", name="routine", priority=20)

    first, second = routing_of(urgent), routing_of(routine)
    assert (urgent.assignee, routine.assignee) == (w3, w1)
    assert (first["rule"], first["priority"], first["threshold"]) == ("least_loaded", 90, 70)
    assert by_user(first) == {
        "w1": (1, 2, "more_loaded", None),
        "w2": (1, 2, "more_loaded", None),
        "w3": (0, 2, "chosen", None),
    }
    assert (second["rule"], second["after"], second["priority"]) == ("next_in_rotation", "w3", 20)
    assert by_user(second) == {
        "w1": (1, 2, "chosen", None),
        "w2": (1, 2, "not_next_in_rotation", None),
        "w3": (1, 2, "not_next_in_rotation", None),
    }
    assert routing_explained(second).headline == (
        "Routed to w1 by priority-weighted routing in push: priority 20 is below 70, so next in the rotation after w3."
    )


def test_a_push_that_finds_nobody_with_room_says_so_on_the_created_event(push_queue, make_task):
    _, workers = push_queue("LEAST_LOADED")
    for worker in workers:
        hold(worker, 2)

    task = make_task("push")

    explained = routing_of(task, "CREATED")
    assert task.status == "OPEN" and not task.history.filter(event_type="CLAIMED").exists()
    assert explained["chosen"] is None and explained["rule"] == "nobody_eligible"
    assert {c["user"]: c["reason"] for c in explained["candidates"]} == dict.fromkeys(["w1", "w2", "w3"], "at_capacity")


def test_an_overflow_records_the_full_queue_it_passed_over(push_queue, make_task):
    queue, _ = push_queue("ROUND_ROBIN", max_capacity=1)
    queue.overflow_queue = WorkflowQueue.objects.get(queue_name="triage")
    queue.save()
    make_task("push", name="fills it")

    spilled = make_task("push", name="spills")

    assert spilled.queue_id == "triage"
    assert routing_of(spilled, "CREATED") == {
        "kind": "overflow",
        "queue": "triage",
        "overflow": [{"queue": "push", "reason": "at_capacity", "load": 1, "capacity": 1}],
    }
    assert routing_explained(routing_of(spilled, "CREATED")).reasons == [
        "Passed over queue push: at capacity (1/1); it overflows to the next queue."
    ]


def test_an_overflow_into_a_push_queue_keeps_the_hop_with_the_push(push_queue, make_task):
    _, (w1, _, _) = push_queue("LEAST_LOADED")
    source = queue_save(queue_name="full", display_name="Full", assignment_mode="PUSH", max_capacity=0)
    WorkflowQueue.objects.filter(pk=source.pk).update(overflow_queue=WorkflowQueue.objects.get(queue_name="push"))

    task = make_task("full")

    explained = routing_of(task)
    assert (task.queue_id, task.assignee, explained["queue"]) == ("push", w1, "push")
    assert explained["overflow"] == [{"queue": "full", "reason": "at_capacity", "load": 0, "capacity": 0}]


def test_a_supervisors_reassignment_records_who_assigned_it(make_task, supervisor_sam, caseworker_alice):
    task = make_task("intake")

    task_reassign(user=supervisor_sam, task_id=task.pk, assignee="alice")

    explained = task.history.get(event_type="REASSIGNED").routing
    assert explained == {
        "kind": "reassign",
        "queue": "intake",
        "by": "supervisor",
        "chosen": "alice",
        "previous": None,
    }
    assert routing_explained(explained).headline == "Assigned to alice by supervisor supervisor."


def test_an_explanation_lists_at_most_a_bounded_number_of_candidates_and_always_the_chosen_one():
    candidates = [
        routing.Candidate(user_id=n, username=f"u{n}", skills=frozenset(), capacity=2, load=0 if n == 15 else 1)
        for n in range(1, 16)
    ]

    decision = routing.route(strategy="LEAST_LOADED", candidates=candidates, required_skills=[], priority=50, cursor=0)

    explained = decision.explanation(queue="q")
    listed = [c["user"] for c in explained["candidates"]]
    assert len(listed) == routing.MAX_EXPLAINED and listed[-1] == "u15" and explained["chosen"] == "u15"
    assert explained["omitted"] == 15 - routing.MAX_EXPLAINED
