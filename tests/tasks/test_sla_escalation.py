"""escalate_overdue_tasks applies each queue's next escalation level once, set-based, even on two workers at once."""

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from queues.models import WorkflowQueue
from tasks.models import TaskHistory, WorkflowTask
from tasks.services import task_claim
from tasks.sla.escalation import escalate_overdue_tasks

RULES = [
    {
        "level": 1,
        "trigger": {"type": "overdue"},
        "actions": {"raise_priority": 20, "move_to_queue": "escalations", "notify": True},
    },
    {"level": 2, "trigger": {"type": "overdue_by", "hours": 24}, "actions": {"reassign_to_supervisor": True}},
]


def overdue(task, hours=1):
    WorkflowTask.objects.filter(pk=task.pk).update(due_date=timezone.now() - timedelta(hours=hours))


@pytest.fixture
def triage_rules(demo_org):
    WorkflowQueue.objects.filter(queue_name="triage").update(escalation_rules=RULES)
    WorkflowQueue.objects.filter(queue_name="escalations").update(escalation_rules=[])


@pytest.mark.django_db
def test_overdue_claimed_task_moves_to_escalations_with_raised_priority(triage_rules, make_task, caseworker_alice):
    task = make_task("triage", priority=50)
    late_but_fine = make_task("triage", priority=50)
    task_claim(user=caseworker_alice, task_id=task.pk)
    overdue(task)
    outcomes = escalate_overdue_tasks()
    assert [(o.queue, o.level, o.tasks) for o in outcomes] == [("triage", 1, 1)]
    task.refresh_from_db()
    assert (task.queue_id, task.status, task.priority, task.escalation_level, task.assignee) == (
        "escalations",
        "OPEN",
        70,
        1,
        None,
    )
    assert WorkflowQueue.objects.get(queue_name="triage").current_load == 0
    event = TaskHistory.objects.get(task=task, event_type="ESCALATED")
    assert event.old_values["queue"] == "triage" and event.new_values["escalation_level"] == 1
    late_but_fine.refresh_from_db()
    assert late_but_fine.escalation_level == 0


@pytest.mark.django_db
def test_running_twice_escalates_once(triage_rules, make_task):
    task = make_task("triage")
    overdue(task)
    escalate_overdue_tasks()
    assert escalate_overdue_tasks() == []
    assert TaskHistory.objects.filter(task=task, event_type="ESCALATED").count() == 1


@pytest.mark.django_db
def test_second_level_reassigns_to_the_queue_supervisor(demo_org, make_task, supervisor_sam):
    WorkflowQueue.objects.filter(queue_name="triage").update(
        escalation_rules=[
            {"level": 1, "trigger": {"type": "overdue"}, "actions": {"raise_priority": 10}},
            RULES[1],
        ]
    )
    task = make_task("triage")
    overdue(task, hours=30)
    escalate_overdue_tasks()
    escalate_overdue_tasks()
    task.refresh_from_db()
    assert (task.escalation_level, task.status, task.assignee) == (2, "CLAIMED", supervisor_sam)
    assert WorkflowQueue.objects.get(queue_name="triage").current_load == 1


@pytest.mark.django_db
def test_dry_run_changes_nothing(triage_rules, make_task):
    task = make_task("triage")
    overdue(task)
    outcomes = escalate_overdue_tasks(dry_run=True)
    assert [(o.queue, o.tasks) for o in outcomes] == [("triage", 1)]
    task.refresh_from_db()
    assert task.escalation_level == 0


@pytest.mark.django_db
def test_command_prints_what_it_did(triage_rules, make_task, capsys):
    overdue(make_task("triage"))
    call_command("escalate_overdue_tasks")
    assert "triage: escalated 1 task(s) to level 1" in capsys.readouterr().out


@pytest.mark.django_db
def test_bad_rules_are_refused_naming_the_level(demo_org):
    from core.errors import InvalidInput
    from queues.escalation import parse_rules

    with pytest.raises(InvalidInput) as error:
        parse_rules([{"trigger": {"type": "sometimes"}, "actions": {"raise_priority": 5}}])
    assert "level 1" in error.value.detail


def test_two_workers_at_once_escalate_each_task_once(committed_db):
    from django.db import transaction

    from tasks.services import task_insert

    WorkflowQueue.objects.filter(queue_name="triage").update(escalation_rules=RULES)
    with transaction.atomic():
        tasks = [task_insert(queue=WorkflowQueue.objects.get(queue_name="triage"), name=f"t{n}") for n in range(200)]
    WorkflowTask.objects.filter(pk__in=[t.pk for t in tasks]).update(due_date=timezone.now() - timedelta(hours=1))
    barrier, errors = threading.Barrier(2), []

    def worker():
        try:
            barrier.wait()
            escalate_overdue_tasks()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    WorkflowQueue.objects.filter(queue_name="triage").update(escalation_rules=[])
    assert errors == []
    counts = TaskHistory.objects.filter(task__in=tasks, event_type="ESCALATED").values_list("task_id", flat=True)
    assert len(counts) == 200 and len(set(counts)) == 200
    assert set(
        WorkflowTask.objects.filter(pk__in=[t.pk for t in tasks]).values_list("escalation_level", flat=True)
    ) == {1}
