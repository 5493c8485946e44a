"""Aging (tasks/sla/aging.py): a waiting task's effective priority rises with its wait and its SLA-breach risk."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from entitlements.row_scope import system_scope
from queues.models import BusinessCalendar, WorkflowQueue
from tasks import services
from tasks.models import TaskRisk, WorkflowTask
from tasks.sla.aging import AGING_HOURS_PER_POINT, MAX_BOOST, RISK_POINTS, task_priorities_age

pytestmark = pytest.mark.django_db

# A Tuesday, 10:00 UTC.
NOW = datetime(2031, 1, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
def scope():
    with system_scope():
        yield


def round_the_clock() -> BusinessCalendar:
    week = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    return BusinessCalendar.objects.get_or_create(name="round the clock", time_zone="UTC", working_hours=week)[0]


def aging(queue_name="intake", *, weight=1, on=True, calendar=None):
    """Aging on the queue, its SLA hours counted in `calendar` (default: round the clock, so waits are wall time)."""
    WorkflowQueue.objects.filter(queue_name=queue_name).update(
        aging_enabled=on, priority_weight=weight, business_calendar=calendar or round_the_clock()
    )


def waiting(make_task, *, hours: float, priority=50, queue_name="intake"):
    task = make_task(queue_name, priority=priority)
    WorkflowTask.objects.filter(pk=task.pk).update(created_at=NOW - timedelta(hours=hours))
    return task


def boost_of(task) -> int:
    return WorkflowTask.objects.get(pk=task.pk).priority_boost


def test_a_new_task_has_its_priority_as_effective_priority(make_task):
    task = make_task("intake", priority=70)
    assert WorkflowTask.objects.get(pk=task.pk).effective_priority == 70


def test_a_task_gains_a_point_per_period_waited_times_the_queue_weight(make_task, scope):
    aging(weight=3)
    fresh = waiting(make_task, hours=AGING_HOURS_PER_POINT - 0.5)
    older = waiting(make_task, hours=2 * AGING_HOURS_PER_POINT + 0.5)

    task_priorities_age(now=NOW)

    assert boost_of(fresh) == 0
    assert boost_of(older) == 2 * 3
    assert WorkflowTask.objects.get(pk=older.pk).effective_priority == 50 + 6


def test_only_business_hours_count_as_waiting(make_task, scope):
    calendar = BusinessCalendar.objects.create(
        name="utc office", time_zone="UTC", working_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed")}
    )
    aging(calendar=calendar)
    # Created Monday 15:00: 2 hours on Monday, 1 on Tuesday morning, though 19 hours have passed.
    overnight = waiting(make_task, hours=19)
    # Created Monday 09:00: 8 + 1 business hours.
    all_monday = waiting(make_task, hours=25)

    task_priorities_age(now=NOW)

    assert boost_of(overnight) == 0
    assert boost_of(all_monday) == int(9 // AGING_HOURS_PER_POINT)


def test_breach_risk_adds_points_times_the_queue_weight(make_task, scope):
    aging(weight=2)
    risky = waiting(make_task, hours=0)
    safe = waiting(make_task, hours=0)
    TaskRisk.objects.create(task=risky, queue_name="intake", breach_probability=0.5, computed_at=NOW)
    TaskRisk.objects.create(task=safe, queue_name="intake", breach_probability=0.04, computed_at=NOW)

    task_priorities_age(now=NOW)

    assert boost_of(risky) == 2 * round(RISK_POINTS * 0.5)
    assert boost_of(safe) == 0


def test_the_boost_is_capped(make_task, scope):
    aging(weight=5)
    ancient = waiting(make_task, hours=1000)
    TaskRisk.objects.create(task=ancient, queue_name="intake", breach_probability=1.0, computed_at=NOW)

    task_priorities_age(now=NOW)

    assert boost_of(ancient) == MAX_BOOST


def test_a_boost_does_not_fall_while_the_task_waits(make_task, scope):
    aging()
    task = waiting(make_task, hours=0)
    risk = TaskRisk.objects.create(task=task, queue_name="intake", breach_probability=0.9, computed_at=NOW)
    task_priorities_age(now=NOW)
    risk.breach_probability = 0.1  # the boost moved it up the queue: its forecast improved
    risk.save()

    task_priorities_age(now=NOW)

    assert boost_of(task) == round(RISK_POINTS * 0.9)


def test_turning_aging_off_clears_the_boosts(make_task, scope):
    aging()
    task = waiting(make_task, hours=3 * AGING_HOURS_PER_POINT + 0.25)
    task_priorities_age(now=NOW)
    assert boost_of(task) == 3
    aging(on=False)

    task_priorities_age(now=NOW)

    assert boost_of(task) == 0


def test_a_queue_that_does_not_age_leaves_its_tasks_at_their_priority(make_task, scope):
    aging(on=False, weight=4)
    task = waiting(make_task, hours=100)

    task_priorities_age(now=NOW)

    assert WorkflowTask.objects.get(pk=task.pk).effective_priority == 50


def test_claimed_tasks_keep_their_boost(make_task, caseworker_alice, scope):
    aging()
    task = waiting(make_task, hours=0)
    WorkflowTask.objects.filter(pk=task.pk).update(status="CLAIMED", assignee=caseworker_alice, priority_boost=7)

    task_priorities_age(now=NOW)

    assert boost_of(task) == 7


def test_escalation_raises_the_effective_priority_and_keeps_the_boost(make_task, supervisor_sam):
    task = make_task("intake", priority=50)
    WorkflowTask.objects.filter(pk=task.pk).update(priority_boost=6)

    services.task_escalate(user=supervisor_sam, task_id=task.pk, priority=80, reason="urgent")

    assert WorkflowTask.objects.get(pk=task.pk).effective_priority == 86


def test_a_task_moved_to_another_queue_starts_aging_again(make_task, supervisor_sam):
    task = make_task("intake", priority=50)
    WorkflowTask.objects.filter(pk=task.pk).update(priority_boost=6)

    services.task_move(user=supervisor_sam, task_id=task.pk, queue_name="triage", reason="wrong queue")

    assert WorkflowTask.objects.get(pk=task.pk).effective_priority == 50


def test_claim_next_takes_an_aged_task_before_a_fresher_one_of_higher_priority(make_task, caseworker_alice, scope):
    aging(weight=2)
    now = timezone.now()
    old = make_task("intake", priority=50)
    WorkflowTask.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=2 * AGING_HOURS_PER_POINT + 1))
    make_task("intake", priority=53)
    task_priorities_age(now=now)  # old: 2 periods × weight 2 = 4 points, 54 > 53

    assert services.task_claim_next(user=caseworker_alice, queue_names=["intake"]).pk == old.pk


def test_the_job_reads_the_queue_in_chunks(make_task, scope, monkeypatch):
    from tasks.sla import aging as module

    monkeypatch.setattr(module, "CHUNK_SIZE", 2)
    aging()
    tasks = [waiting(make_task, hours=AGING_HOURS_PER_POINT * (n + 1) + 0.25) for n in range(5)]

    run = task_priorities_age(queue_name="intake", now=NOW)

    assert [boost_of(task) for task in tasks] == [1, 2, 3, 4, 5]
    assert run.changed == 5
