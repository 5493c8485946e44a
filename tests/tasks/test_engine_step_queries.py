"""An engine step through the services costs a fixed number of statements: claim and complete are pinned, so an
extra access check, a second read of the definition or a history row inserted on its own fails here.

With the business-calendar cache on (queues/calendar_cache.py; REDIS_URL in production, the test's local cache
here) and the definition read once per process (tasks.bpmn.workflows.definition_runtime), both warmed by a first
instance as a running server would have them.
"""

import pytest
from django.core.cache import cache

from entitlements import row_scope
from tasks import services
from tasks.bpmn import workflows
from tasks.models import TaskHistory, WorkflowTask
from tests.tasks.engine.documents import DEMO_FILE

INTAKE = {"received_on": "2026-11-02", "received_via": "EMAIL"}
TRIAGE = {"allegation_type": "MISCONDUCT"}
# Statements Django sends (savepoints of the test's transaction included). Claim: lock and check the task, count
# the claim on its queue, update the task, one history row. Complete: lock the instance, lock and check the task,
# update it, lock the instance's other tasks, the queue load, store the engine state, read the next task's queue,
# insert it, the case's routing hop (none here), the history rows in one insert.
CLAIM_QUERIES = 6
COMPLETE_QUERIES = 12
# A case's workflow: the next task's hop appended to the case's routing history (lock the mapping reading its last
# hop, append, mark an open case in progress) instead of the look for a mapping.
COMPLETE_CASE_STEP_QUERIES = 14


@pytest.fixture
def running_server(settings, supervisor_sam, caseworker_alice):
    """The demo model deployed, with the caches a running server holds warm."""
    settings.WORK_CALENDAR_CACHE_SECONDS = 300
    cache.clear()
    workflows.definition_runtime.cache_clear()
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_FILE.read_text())
    _complete_both_steps(_start(caseworker_alice, "WARM-1"), caseworker_alice)
    yield
    cache.clear()


def _start(user, business_key):
    return workflows.process_start(
        user=user, process_key="onecms_case_handling", business_key=business_key, variables={"case_number": "C-1"}
    )


def _open_task(instance) -> WorkflowTask:
    return WorkflowTask.objects.get(process_instance=instance, status="OPEN")


def _complete_both_steps(instance, user) -> None:
    for variables in (INTAKE, TRIAGE):
        task = _open_task(instance)
        services.task_claim(user=user, task_id=task.pk)
        services.task_complete(user=user, task_id=task.pk, variables=variables)


def test_claiming_a_task_takes_a_fixed_number_of_queries(running_server, caseworker_alice, django_assert_num_queries):
    task = _open_task(_start(caseworker_alice, "Q-1"))

    with django_assert_num_queries(CLAIM_QUERIES):
        services.task_claim(user=caseworker_alice, task_id=task.pk)


@pytest.mark.parametrize("step", [0, 1], ids=["intake", "triage"])
def test_completing_a_task_takes_a_fixed_number_of_queries(
    running_server, caseworker_alice, django_assert_max_num_queries, step
):
    instance = _start(caseworker_alice, "Q-1")
    for variables in (INTAKE, TRIAGE)[:step]:
        task = _open_task(instance)
        services.task_claim(user=caseworker_alice, task_id=task.pk)
        services.task_complete(user=caseworker_alice, task_id=task.pk, variables=variables)
    task = _open_task(instance)
    services.task_claim(user=caseworker_alice, task_id=task.pk)

    with django_assert_max_num_queries(COMPLETE_QUERIES):
        services.task_complete(user=caseworker_alice, task_id=task.pk, variables=(INTAKE, TRIAGE)[step])

    assert WorkflowTask.objects.filter(process_instance=instance, status="OPEN").count() == 1


def test_completing_a_step_of_a_case_takes_a_fixed_number_of_queries(
    running_server, caseworker_alice, django_assert_max_num_queries
):
    from cases.models import Case
    from cases.services import case_open

    case = case_open(
        user=caseworker_alice,
        title="t",
        description="d",
        allegations=[{"type": "FRAUD", "description": "x", "date": "2026-01-15"}],
    )
    task = WorkflowTask.objects.get(process_instance__business_key=case.case_number, status="OPEN")
    services.task_claim(user=caseworker_alice, task_id=task.pk)

    with django_assert_max_num_queries(COMPLETE_CASE_STEP_QUERIES):
        services.task_complete(user=caseworker_alice, task_id=task.pk, variables=INTAKE)

    case = Case.objects.get(pk=case.pk)
    assert case.status == "IN_PROGRESS"
    assert [hop["to_queue"] for hop in case.workflow_mappings.get().routing_history][-1] == "triage"


def test_completing_sends_the_row_scope_twice(running_server, caseworker_alice, monkeypatch):
    """The user's scope for the access check and the task's update, then the system's for the engine's step."""
    task = _open_task(_start(caseworker_alice, "Q-1"))
    services.task_claim(user=caseworker_alice, task_id=task.pk)
    sent = []
    send = row_scope._send
    monkeypatch.setattr(row_scope, "_send", lambda connection, scope: sent.append(scope) or send(connection, scope))

    services.task_complete(user=caseworker_alice, task_id=task.pk, variables=INTAKE)

    assert [scope.kind or "user" for scope in sent] == ["user", row_scope.SYSTEM_KIND]


def test_a_step_writes_its_history_rows_in_order(running_server, caseworker_alice):
    instance = _start(caseworker_alice, "Q-1")
    intake = _open_task(instance)
    services.task_claim(user=caseworker_alice, task_id=intake.pk)

    services.task_complete(user=caseworker_alice, task_id=intake.pk, variables=INTAKE)

    triage = _open_task(instance)
    events = TaskHistory.objects.filter(task__in=[intake, triage]).order_by("event_id")
    assert [(e.task_id, e.event_type) for e in events] == [
        (intake.pk, "CREATED"),
        (intake.pk, "CLAIMED"),
        (intake.pk, "COMPLETED"),
        (triage.pk, "CREATED"),
    ]
    completed = events.get(event_type="COMPLETED")
    assert completed.actor == caseworker_alice and completed.new_values["variables"] == INTAKE
    assert triage.due_date is not None
