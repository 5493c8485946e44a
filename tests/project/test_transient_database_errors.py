"""A change that loses a race inside PostgreSQL (lock timeout, deadlock, serialization failure) is a 503 to retry.

The service call was one transaction and PostgreSQL rolled it back, so nothing was applied; the client is told so
in the API's error shape, with Retry-After, instead of a 500.
"""

import psycopg
import pytest
from django.db import connection, transaction

from queues.models import WorkflowQueue
from tasks.models import TaskHistory, WorkflowTask
from tasks.services import task_insert


@pytest.fixture
def alice_api(committed_api_as):
    return committed_api_as("alice")


def add_task(name):
    with transaction.atomic():
        return task_insert(queue=WorkflowQueue.objects.get(queue_name="intake"), name=name)


@pytest.fixture
def short_lock_timeout():
    """The request's connection gives up waiting for a row lock after 200 ms (the API runs in this thread)."""
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")
    yield
    with connection.cursor() as cursor:
        cursor.execute("RESET lock_timeout")


def test_a_claim_that_times_out_on_a_locked_task_is_a_503_and_changes_nothing(
    alice_api, test_database_url, short_lock_timeout
):
    task = add_task("Locked elsewhere")
    with psycopg.connect(test_database_url) as other:
        other.execute("SELECT 1 FROM flowable.workflow_tasks WHERE task_id = %s FOR UPDATE", [task.pk])
        response = alice_api.post(f"/api/workflow/tasks/{task.pk}/claim")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["code"] == "database_conflict"
    assert "try again" in response.json()["detail"].lower()
    task.refresh_from_db()
    assert (task.status, task.assignee_id) == ("OPEN", None)
    assert not TaskHistory.objects.filter(task_id=task.pk, event_type="CLAIMED").exists()


def test_the_same_claim_succeeds_once_the_lock_is_gone(alice_api, short_lock_timeout):
    task = add_task("Free")
    response = alice_api.post(f"/api/workflow/tasks/{task.pk}/claim")
    assert response.status_code == 200
    assert WorkflowTask.objects.get(pk=task.pk).status == "CLAIMED"


def test_the_schema_documents_the_503_on_every_write_and_only_there():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [(method, operation) for item in schema["paths"].values() for method, operation in item.items()]
    writes = [operation for method, operation in operations if method in ("post", "put", "patch", "delete")]
    reads = [operation for method, operation in operations if method == "get"]
    assert writes and reads
    assert all("503" in operation["responses"] for operation in writes)
    assert not any("503" in operation["responses"] for operation in reads)
    claim_next = schema["paths"]["/api/workflow/tasks/claim/next/"]["post"]["responses"]["503"]
    assert claim_next["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
