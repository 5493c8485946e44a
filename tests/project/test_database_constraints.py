"""The database itself rejects bad rows, whatever code wrote them."""

import pytest
from django.db import IntegrityError, connection, transaction

from cases.models import Case
from queues.models import WorkflowQueue
from tasks.models import WorkflowDefinition, WorkflowTask
from tests.factories import CaseFactory, QueueFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def raises_integrity(callable_):
    with pytest.raises(IntegrityError), transaction.atomic():
        callable_()


def test_claimed_task_without_assignee_is_rejected():
    queue = QueueFactory()
    raises_integrity(lambda: WorkflowTask.objects.create(name="t", queue=queue, status="CLAIMED"))


def test_claimed_task_with_assignee_is_accepted():
    task = TaskFactory(status="CLAIMED", assignee=UserFactory())
    assert task.pk


def test_duplicate_case_number_is_rejected():
    CaseFactory(case_number="CASE-2026-000001")
    raises_integrity(lambda: Case.objects.create(case_number="CASE-2026-000001", title="again"))


def test_negative_queue_capacity_is_rejected():
    raises_integrity(lambda: WorkflowQueue.objects.create(queue_name="neg", display_name="Neg", max_capacity=-1))


def test_negative_queue_load_is_rejected_by_sql_update():
    queue = QueueFactory()
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE queues.workflow_queues SET current_load = -1 WHERE queue_id = %s", [queue.pk])


def test_unknown_task_status_is_rejected():
    raises_integrity(lambda: TaskFactory(status="DONE"))


def test_unknown_queue_type_is_rejected():
    raises_integrity(lambda: QueueFactory(queue_type="EXPRESS"))


def test_duplicate_process_key_version_is_rejected():
    WorkflowDefinition.objects.create(process_key="p", version=1, bpmn_xml="<x/>")
    raises_integrity(lambda: WorkflowDefinition.objects.create(process_key="p", version=1, bpmn_xml="<y/>"))


def test_task_priority_out_of_range_is_rejected():
    raises_integrity(lambda: TaskFactory(priority=101))


def test_task_in_unknown_queue_is_rejected():
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,"
            " escalation_level, required_skills, variables, form_fields, created_at, updated_at, task_definition_key)"
            " VALUES ('t', '', 'no-such-queue', '{}', 'OPEN', 50, 0, '{}', '{}', '[]', now(), now(), '')"
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
