"""seed_demo builds the demo organisation and is idempotent."""

import pytest
from django.core.management import call_command
from django.db import connection

from cases.models import Case
from entitlements.models import User

pytestmark = pytest.mark.django_db

SNAPSHOT_TABLES = [
    ("entitlements.departments", "dept_code, dept_name, parent_id"),
    ("entitlements.skills", "skill_code, name"),
    ("entitlements.users", "username, email, department_id, is_staff, is_service_account, password"),
    ("entitlements.workflow_roles", "role_code, queue_names, permissions, group_id"),
    ("entitlements.user_role_assignments", "user_id, role_id, is_temporary_escalation, valid_from, valid_until"),
    (
        "queues.workflow_queues",
        "queue_name, queue_type, department_id, max_capacity, routing_strategy, overflow_queue_id",
    ),
    ("queues.queue_group_permissions", "group_id, permission_id, content_object_id"),
    ("entitlements.user_skills", "user_id, skill_id"),
    ("flowable.workflow_definitions", "process_key, version"),
    ("onecms.cases", "case_number, title, status"),
    ("flowable.workflow_tasks", "name, queue_name, status"),
]


def snapshot():
    result = {}
    with connection.cursor() as cursor:
        for table, columns in SNAPSHOT_TABLES:
            cursor.execute(f"SELECT {columns} FROM {table} ORDER BY {columns}")
            result[table] = cursor.fetchall()
    return result


def run_seed(*args):
    call_command("seed_demo", *args, stdout=open("/dev/null", "w"))


def test_seed_demo_twice_leaves_the_same_data():
    run_seed("--cases", "10")
    first = snapshot()
    run_seed("--cases", "10")
    assert snapshot() == first


def test_seed_demo_deploys_the_workflow_and_opens_cases_at_different_stages():
    run_seed("--cases", "10")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM onecms.cases")
        assert cursor.fetchone()[0] == 10
        titles = list(Case.objects.values_list("title", flat=True))
        assert all(title.startswith("Demo case") for title in titles)
        assert not [title for title in titles if "_" in title]  # "conflict of interest", not a code
        assert any("conflict of interest report" in title for title in titles)
        cursor.execute("SELECT DISTINCT queue_name FROM flowable.workflow_tasks WHERE status = 'OPEN' ORDER BY 1")
        waiting_in = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT count(*) FROM onecms.cases WHERE status = 'CLOSED'")
        closed = cursor.fetchone()[0]
    assert {"intake", "triage", "legal-review"} <= set(waiting_in)
    assert closed >= 1


def test_seed_demo_creates_the_organisation():
    run_seed("--password", "demo-pass-123")
    assert set(User.objects.values_list("username", flat=True)) >= {
        "supervisor",
        "alice",
        "bob",
        "carol",
        "integration",
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT queue_name, queue_type FROM queues.workflow_queues ORDER BY queue_name")
        assert cursor.fetchall() == [
            ("escalations", "PRIORITY"),
            ("fraud-investigation", "SPECIALIZED"),
            ("intake", "STANDARD"),
            ("legal-review", "SPECIALIZED"),
            ("triage", "STANDARD"),
        ]
        cursor.execute(
            "SELECT c.dept_code FROM entitlements.departments c JOIN entitlements.departments p"
            " ON c.parent_id = p.department_id WHERE p.dept_code = 'investigations' ORDER BY 1"
        )
        assert [r[0] for r in cursor.fetchall()] == ["fraud", "misconduct"]
    assert User.objects.get(username="alice").check_password("demo-pass-123")
    assert User.objects.get(username="bob").skills.filter(skill_code="fraud").exists()
    assert User.objects.get(username="supervisor").is_staff


def test_seed_demo_password_option_resets_passwords():
    run_seed("--password", "first-pass-123")
    run_seed("--password", "second-pass-456")
    assert User.objects.get(username="carol").check_password("second-pass-456")


def test_seed_demo_keeps_passwords_when_run_again_without_option(capsys):
    run_seed("--password", "kept-pass-123")
    run_seed()
    assert User.objects.get(username="alice").check_password("kept-pass-123")


def test_the_demo_escalates_and_someone_works_the_escalations_queue():
    from datetime import timedelta

    from django.utils import timezone

    from entitlements.models import Capability
    from queues.escalation import parse_rules
    from queues.models import WorkflowQueue
    from queues.selectors import queue_people
    from tasks.models import WorkflowTask
    from tasks.services import task_insert
    from tasks.sla.escalation import escalate_overdue_tasks

    run_seed("--no-workflows")
    escalations = WorkflowQueue.objects.get(queue_name="escalations")
    assert "dave" in {user.username for user in queue_people(queue=escalations, capability=Capability.WORK)}
    with_rules = WorkflowQueue.objects.exclude(escalation_rules=[])
    assert {"intake", "triage", "fraud-investigation"} <= set(with_rules.values_list("queue_name", flat=True))
    for queue in with_rules:
        parse_rules(queue.escalation_rules)

    late = task_insert(queue=WorkflowQueue.objects.get(queue_name="triage"), name="Late triage")
    WorkflowTask.objects.filter(pk=late.pk).update(due_date=timezone.now() - timedelta(hours=30))
    escalate_overdue_tasks()
    late.refresh_from_db()
    assert (late.queue_id, late.escalation_level) == ("escalations", 2)


# --- the demo workflow's message, decision and external task (version 2) --------------------------------------------


def demo_instances() -> dict[int, "ProcessInstance"]:  # noqa: F821
    """The demo cases' instances by the case's number in the plan (1-based: "Demo case 03" is 3)."""
    from tasks.models import ProcessInstance

    instances = ProcessInstance.objects.select_related("case_mapping__case")
    titles = {instance: instance.case_mapping.case.title for instance in instances}
    return {int(title.split(":")[0].split()[-1]): i for i, title in titles.items() if title.startswith("Demo case")}


def open_tasks(instance) -> list[tuple[str, str]]:
    from tasks.models import WorkflowTask

    return list(
        WorkflowTask.objects.filter(process_instance=instance, status="OPEN").values_list(
            "task_definition_key", "queue"
        )
    )


def test_the_demo_runs_version_2_with_its_decision_records_check_and_documents_message():
    from tasks.models import DecisionDefinition, ExternalTask, WorkflowDefinition

    run_seed("--cases", "10")
    versions = WorkflowDefinition.objects.filter(process_key="onecms_case_handling").order_by("version")
    assert [d.version for d in versions] == [1, 2]
    assert DecisionDefinition.objects.filter(decision_key="triage_routing", is_active=True).count() == 1
    cases = demo_instances()
    assert {instance.definition.version for instance in cases.values()} == {2}

    # 3 (fraud, 40,000): intake done, its records check left to the Celery worker: not locked by anyone.
    (pending,) = ExternalTask.objects.filter(process_instance=cases[3])
    assert (pending.topic_name, pending.status, pending.worker_id) == ("case-records-check", "ACTIVE", "")
    assert open_tasks(cases[3]) == [] and cases[3].waiting_messages == []
    # 4: its records check ran (the seed's worker account, the handler's variables); it waits for its documents.
    (checked,) = ExternalTask.objects.filter(process_instance=cases[4])
    assert checked.status == "COMPLETED" and checked.locked_by.username == "celery-external-tasks"
    assert cases[4].variables["prior_cases"] == 1  # case 1 names the same subject as case 4
    assert cases[4].waiting_messages == ["documents_received"] and open_tasks(cases[4]) == []
    # 5 (fraud, 120,000) and 6 (misconduct): documents sent; the decision routed one to the fraud team, one to triage.
    assert cases[5].variables["routing"] == {"queue": "fraud-investigation", "priority": "urgent"}
    assert cases[5].variables["documents"] == ["complaint form", "supporting evidence"]
    assert open_tasks(cases[5]) == [("fraud_investigation", "fraud-investigation")]
    assert cases[6].variables["routing"] == {"queue": "triage", "priority": "normal"}
    assert open_tasks(cases[6]) == [("triage", "triage")]
    # 9 (conflict of interest, 60,000) went to the fraud team without triage; 10 (fraud, 5,000) was triaged first.
    assert cases[9].status == cases[10].status == "COMPLETED"
    assert cases[9].variables["routing"]["queue"] == "fraud-investigation" and "triage_notes" not in cases[9].variables


def test_documents_not_received_in_14_days_are_chased_and_the_case_waits_for_them_again():
    from datetime import timedelta

    from django.utils import timezone

    from tasks.bpmn.workflows import process_fire_due_timers
    from tasks.models import WorkflowTask
    from tasks.services import task_claim, task_complete

    run_seed("--cases", "10")
    waiting = demo_instances()[4]
    assert waiting.next_timer_due_at is not None
    process_fire_due_timers(now=timezone.now() + timedelta(days=13))
    waiting.refresh_from_db()
    assert waiting.waiting_messages == ["documents_received"] and open_tasks(waiting) == []

    process_fire_due_timers(now=timezone.now() + timedelta(days=15))
    waiting.refresh_from_db()
    assert waiting.waiting_messages == [] and open_tasks(waiting) == [("chase_documents", "intake")]

    alice = User.objects.get(username="alice")
    chase = WorkflowTask.objects.get(process_instance=waiting, status="OPEN")
    task_claim(user=alice, task_id=chase.pk)
    task_complete(user=alice, task_id=chase.pk, variables={"chased_via": "PHONE"})
    waiting.refresh_from_db()
    assert waiting.waiting_messages == ["documents_received"] and open_tasks(waiting) == []
    assert waiting.next_timer_due_at > timezone.now() + timedelta(days=13)  # the reminder is set again


def test_the_seed_also_runs_a_records_check_that_was_waiting_before_it():
    from cases.services import case_open
    from tasks.models import ExternalTask, WorkflowTask
    from tasks.services import task_claim, task_complete

    run_seed("--cases", "0")  # the organisation and both versions, no case yet
    alice, portal = User.objects.get(username="alice"), User.objects.get(username="integration")
    early = case_open(  # opened through the integration: the seed counts alice's cases as its own
        user=portal,
        title="Reported by phone",
        allegations=[{"type": "FRAUD", "description": "Cash missing.", "date": "2026-10-01"}],
    )
    intake = WorkflowTask.objects.get(process_instance__case_mapping__case=early, status="OPEN")
    task_claim(user=alice, task_id=intake.pk)
    task_complete(
        user=alice,
        task_id=intake.pk,
        variables={"received_on": "2026-10-02", "received_via": "PHONE", "amount_at_stake": 0},
    )

    run_seed("--cases", "10")

    (checked,) = ExternalTask.objects.filter(process_instance__case_mapping__case=early)
    assert checked.status == "COMPLETED" and checked.worker_id == "seed_demo"
    cases = demo_instances()
    assert open_tasks(cases[5]) == [("fraud_investigation", "fraud-investigation")]  # the seed's own steps still ran
    assert ExternalTask.objects.get(process_instance=cases[3]).status == "ACTIVE"  # left to the worker
