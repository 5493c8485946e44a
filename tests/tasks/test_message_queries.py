"""A message correlation through the services costs a fixed number of statements (bench/engine.py --messages
measures it against the raw SQL): find and lock the waiting instance (its access check in the same statement), store
the engine's step, create the next task with its history. An extra lookup, a second read of the definition or a
history row inserted on its own fails here.

The definition is read once per process (tasks.bpmn.workflows.definition_runtime), warmed by a first correlation as
a running server would have it.
"""

import pytest
from django.core.cache import cache

from tasks.bpmn import messages, workflows
from tasks.models import TaskHistory, WorkflowTask

from .test_messages import deploy, waiting_for_documents

# Statements Django sends (the savepoint and its release, in the test's transaction): the waiting instance found,
# with the sender's access check, and locked in one statement; the engine step stored; the next task's queue read;
# the task inserted and its history row; the look for a case mapping (none here) to append the case's routing hop.
CORRELATE_QUERIES = 8


@pytest.fixture
def running_server(settings, supervisor_sam, caseworker_alice):
    settings.WORK_CALENDAR_CACHE_SECONDS = 300
    cache.clear()
    workflows.definition_runtime.cache_clear()
    deploy(supervisor_sam, "message_catch")
    waiting_for_documents(supervisor_sam, caseworker_alice, business_key="WARM-1")
    messages.message_correlate(user=caseworker_alice, message_name="documents_received", business_key="WARM-1")
    yield
    cache.clear()


@pytest.mark.django_db
def test_correlating_a_message_takes_a_fixed_number_of_queries(
    running_server, supervisor_sam, caseworker_alice, django_assert_max_num_queries
):
    instance = waiting_for_documents(supervisor_sam, caseworker_alice, business_key="DOC-Q")

    with django_assert_max_num_queries(CORRELATE_QUERIES):
        messages.message_correlate(
            user=caseworker_alice, message_name="documents_received", business_key="DOC-Q", variables={"pages": 3}
        )

    (task,) = WorkflowTask.objects.filter(process_instance=instance, status="OPEN")
    assert task.task_definition_key == "review_documents"
    assert TaskHistory.objects.filter(task=task, event_type="CREATED").count() == 1
