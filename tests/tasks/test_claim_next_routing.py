"""Claim-next records why, on the CLAIMED event: the queues it considered with their best task's priority, those
it passed over and for what reason (at capacity, tasks needing skills the claimer lacks, nothing open, its head
held by another claim, its row busy), and the one it chose."""

import threading

import psycopg
import pytest
from django.db import transaction

from entitlements.models import User
from entitlements.services import role_assignment_grant, role_save
from queues.models import WorkflowQueue
from queues.services import queue_save
from tasks import services
from tasks.models import TaskHistory
from tasks.routing_explanation import routing_explained
from tests.roles import admin_connect
from tests.tasks.test_claim_contention import server_pid, waiting_for

CLAIM = "SELECT task_id, queue_name FROM flowable.claim_next_for_user(%s, %s::text[], NULL)"


def queues_of(explained):
    return {q["queue"]: q for q in explained["queues"]}


def claimed_routing(task_id):
    return TaskHistory.objects.get(task_id=task_id, event_type="CLAIMED").routing


@pytest.mark.django_db
def test_claim_next_explains_the_queues_it_passed_over_and_why(caseworker_alice, make_task):
    # alice works intake and triage; give her legal-review and escalations as well.
    role = role_save(
        role_code="more-work", name="More", queue_names=["legal-review", "escalations"], permissions=["view", "work"]
    )
    role_assignment_grant(user=caseworker_alice, role=role)
    WorkflowQueue.objects.filter(queue_name="intake").update(max_capacity=1, current_load=1)
    make_task("intake", name="urgent, but intake is full", priority=90)
    make_task("legal-review", name="needs legal", priority=80, required_skills=["legal"])
    triage = make_task("triage", name="routine", priority=10)
    make_task("triage", name="later", priority=5)

    task = services.task_claim_next(user=caseworker_alice)

    assert task.pk == triage.pk
    explained = claimed_routing(task.pk)
    assert (explained["kind"], explained["chosen"], explained["took_head"], explained["waited"]) == (
        "claim_next",
        "triage",
        True,
        False,
    )
    queues = queues_of(explained)
    assert queues["intake"] == {
        "queue": "intake",
        "head_priority": 90,
        "reason": "at_capacity",
        "load": 1,
        "capacity": 1,
    }
    assert queues["triage"] == {"queue": "triage", "head_priority": 10, "chosen": True, "load": 1, "capacity": 200}
    assert queues["legal-review"] == {"queue": "legal-review", "reason": "missing_skills", "missing": ["legal"]}
    assert queues["escalations"] == {"queue": "escalations", "reason": "no_open_task"}
    assert [q["queue"] for q in explained["queues"]][:2] == ["intake", "triage"]  # ranked by best open task
    words = routing_explained(explained, actor="alice")
    assert words.headline == (
        "alice claimed it with claim-next from triage: the best-ranked of alice's queues that could give a task; "
        "its best open task (priority 10)."
    )
    assert "Queue intake (best open task priority 90): at capacity (1/1)." in words.reasons
    assert "Queue legal-review: its open tasks need skills the claimer lacks (legal)." in words.reasons


@pytest.mark.django_db
def test_claim_next_marks_queues_ranked_below_the_chosen_one(caseworker_alice, make_task):
    make_task("intake", name="best", priority=60)
    make_task("triage", name="next", priority=40)

    task = services.task_claim_next(user=caseworker_alice)

    explained = claimed_routing(task.pk)
    assert queues_of(explained) == {
        "intake": {"queue": "intake", "head_priority": 60, "chosen": True, "load": 1, "capacity": 200},
        "triage": {"queue": "triage", "head_priority": 40, "reason": "ranked_lower"},
    }
    words = routing_explained(explained, actor="alice")
    assert words.headline == (
        "alice claimed it with claim-next from intake: its best open task (priority 60) ranked first among alice's "
        "queues."
    )
    assert "Queue triage (best open task priority 40): its best open task ranked lower." in words.reasons


@pytest.mark.django_db
def test_claim_next_keeps_its_explanation_bounded_however_many_queues_the_claimer_works(caseworker_alice, make_task):
    names = [f"extra-{n:02}" for n in range(14)]
    for name in names:
        queue_save(queue_name=name, display_name=name)
    role_assignment_grant(
        user=caseworker_alice,
        role=role_save(role_code="many", name="Many", queue_names=names, permissions=["view", "work"]),
    )
    for n, name in enumerate(names[:12]):
        make_task(name, priority=20 + n)
    WorkflowQueue.objects.filter(queue_name__in=names[1:12]).update(max_capacity=0)  # all but the last in line

    task = services.task_claim_next(user=caseworker_alice)

    explained = claimed_routing(task.pk)
    assert explained["chosen"] == "extra-00"
    ranked = [q for q in explained["queues"] if "head_priority" in q]
    headless = [q for q in explained["queues"] if "head_priority" not in q]
    # The ten best queues passed over (at capacity), then the chosen one, twelfth; the eleventh is counted.
    assert [q["queue"] for q in ranked] == [f"extra-{n:02}" for n in range(11, 1, -1)] + ["extra-00"]
    assert {q.get("reason") for q in ranked[:10]} == {"at_capacity"}
    assert [q["queue"] for q in headless] == ["extra-12", "extra-13", "intake", "triage"]  # nothing open
    assert explained["omitted"] == 1


@pytest.mark.django_db
def test_claim_next_lists_two_of_the_queues_ranked_below_the_chosen_one_and_counts_the_rest(
    caseworker_alice, make_task
):
    names = [f"extra-{n:02}" for n in range(5)]
    for name in names:
        queue_save(queue_name=name, display_name=name)
    role_assignment_grant(
        user=caseworker_alice,
        role=role_save(role_code="many", name="Many", queue_names=names, permissions=["view", "work"]),
    )
    for n, name in enumerate(names):
        make_task(name, priority=20 + n)

    task = services.task_claim_next(user=caseworker_alice)

    explained = claimed_routing(task.pk)
    assert [(q["queue"], q.get("reason")) for q in explained["queues"] if "head_priority" in q] == [
        ("extra-04", None),
        ("extra-03", "ranked_lower"),
        ("extra-02", "ranked_lower"),
    ]
    assert explained["omitted"] == 2


@pytest.fixture
def alice(committed_db, test_database_url):
    user = User.objects.get(username="alice")
    with psycopg.connect(test_database_url, autocommit=True) as conn:
        conn.execute("SELECT * FROM entitlements.work_access_for(%s)", [user.pk])  # her access answer, remembered
    return user


def capacity_of(queue_name):
    """A queue's capacity as committed (tests on committed data before this one may have changed it)."""
    return WorkflowQueue.objects.get(queue_name=queue_name).max_capacity


def add_task(queue_name, name, priority):
    with transaction.atomic():
        return services.task_insert(
            queue=WorkflowQueue.objects.get(queue_name=queue_name), name=name, priority=priority
        )


def test_claim_next_explains_passing_over_a_queue_whose_tasks_another_transaction_holds(alice, test_database_url):
    held = add_task("intake", "held by another claim", 90)
    taken = add_task("triage", "free", 10)
    with admin_connect() as other, psycopg.connect(test_database_url) as claimer:
        # Another transaction holds intake's only task (a claim in progress, a supervisor's edit).
        other.execute("SELECT 1 FROM flowable.workflow_tasks WHERE task_id = %s FOR UPDATE", [held.pk])
        assert claimer.execute(CLAIM, [alice.pk, ["intake", "triage"]]).fetchone() == (taken.pk, "triage")
        claimer.commit()
        other.rollback()

    explained = claimed_routing(taken.pk)
    assert queues_of(explained)["intake"] == {"queue": "intake", "head_priority": 90, "reason": "tasks_held"}
    assert queues_of(explained)["triage"]["chosen"] is True
    assert (
        "Queue intake (best open task priority 90): each task it had for the claimer was being claimed by someone "
        "else." in routing_explained(explained, actor="alice").reasons
    )


def test_claim_next_explains_taking_the_next_task_when_another_claim_holds_the_head(alice, test_database_url):
    head = add_task("intake", "head", 90)
    second = add_task("intake", "second", 80)
    with admin_connect() as other, psycopg.connect(test_database_url) as claimer:
        other.execute("SELECT 1 FROM flowable.workflow_tasks WHERE task_id = %s FOR UPDATE", [head.pk])
        assert claimer.execute(CLAIM, [alice.pk, ["intake"]]).fetchone() == (second.pk, "intake")
        claimer.commit()
        other.rollback()

    explained = claimed_routing(second.pk)
    assert (explained["chosen"], explained["took_head"]) == ("intake", False)
    assert "Its best task was being claimed by someone else at that moment, so the next one was taken." in (
        routing_explained(explained, actor="alice").reasons
    )


def test_claim_next_explains_passing_over_a_queue_whose_row_another_claim_is_writing(alice, test_database_url):
    add_task("intake", "intake best", 90)
    taken = add_task("triage", "triage best", 10)
    with admin_connect() as other, psycopg.connect(test_database_url) as claimer:
        # Another claim is counting its task in intake's row and has not committed yet.
        other.execute("UPDATE queues.workflow_queues SET current_load = current_load + 1 WHERE queue_name = 'intake'")
        assert claimer.execute(CLAIM, [alice.pk, ["intake", "triage"]]).fetchone() == (taken.pk, "triage")
        claimer.commit()
        other.rollback()

    assert queues_of(claimed_routing(taken.pk))["intake"] == {
        "queue": "intake",
        "head_priority": 90,
        "reason": "queue_busy",
        "load": 0,
        "capacity": capacity_of("intake"),
    }


def test_claim_next_explains_waiting_when_every_queue_was_busy(alice, test_database_url):
    intake = add_task("intake", "intake best", 90)
    add_task("triage", "triage best", 10)
    outcome = {}
    with admin_connect() as other, psycopg.connect(test_database_url) as claimer:
        # Other claims are counting tasks in both queues' rows: the claim passes over both, then waits for intake.
        other.execute(
            "UPDATE queues.workflow_queues SET current_load = current_load + 1 WHERE queue_name IN ('intake', 'triage')"
        )

        def claim():
            try:
                outcome["row"] = claimer.execute(CLAIM, [alice.pk, ["intake", "triage"]]).fetchone()
                claimer.commit()
            except Exception as exc:  # reported by the assertion below
                outcome["error"] = exc

        thread = threading.Thread(target=claim)
        thread.start()
        with admin_connect(autocommit=True) as observer:
            waiting_for(observer, server_pid(other))
        other.rollback()
        thread.join(timeout=10)

    assert outcome == {"row": (intake.pk, "intake")}
    explained = claimed_routing(intake.pk)
    assert (explained["chosen"], explained["waited"]) == ("intake", True)
    assert queues_of(explained)["triage"] == {
        "queue": "triage",
        "head_priority": 10,
        "reason": "queue_busy",
        "load": 0,
        "capacity": capacity_of("triage"),
    }
    assert "Every queue was busy with other claims, so the claim waited for this one." in (
        routing_explained(explained, actor="alice").reasons
    )
