"""A write that reaches a server that has become read-only (a primary demoted in a failover, as libpq's
target_session_attrs=read-write judges it) answers 503 with Retry-After, and its connection is dropped, so the next
request connects again to whichever listed host is primary now.

The server's read-only state is what PostgreSQL reports to the client (default_transaction_read_only): set here for
the session, as `ALTER SYSTEM SET default_transaction_read_only` and a reload would set it for every session."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client

from core.api import read_only_server
from entitlements.models import User


@pytest.fixture
def alice_token(committed_db):
    from entitlements.services import api_token_create

    return api_token_create(user=User.objects.get(username="alice")).key


def intake_task(name: str):
    """A committed intake task (the make_task fixture's, outside the test transaction these tests cannot have)."""
    from queues.models import WorkflowQueue
    from tasks.services import task_insert

    with transaction.atomic():
        return task_insert(queue=WorkflowQueue.objects.get(queue_name="intake"), name=name)


def server_turns_read_only() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")


def test_a_write_on_a_server_turned_read_only_is_a_503_and_the_next_request_reconnects(alice_token):
    intake_task("Read-only drill")
    client = Client(raise_request_exception=False)
    auth = {"HTTP_AUTHORIZATION": f"Token {alice_token}"}
    server_turns_read_only()

    refused = client.post("/api/workflow/tasks/claim/next", **auth)

    assert refused.status_code == 503
    assert int(refused["Retry-After"]) > 0
    assert refused.json()["code"] == "database_unavailable"
    assert connection.connection is None, "the connection to the read-only server was kept"
    claimed = client.post("/api/workflow/tasks/claim/next", **auth)
    assert claimed.status_code == 200, claimed.content
    assert claimed.json()["name"] == "Read-only drill"


def test_a_page_write_on_a_server_turned_read_only_is_the_try_again_page(committed_db):
    task = intake_task("Read-only page drill")
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.get(username="alice"))
    server_turns_read_only()

    response = client.post(f"/tasks/{task.pk}/claim/")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert connection.connection is None


def test_a_write_in_a_transaction_the_code_made_read_only_is_not_taken_for_a_failover(committed_db):
    """The server takes writes: a read-only transaction of our own that writes is a bug, not a fault to retry."""
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute("CREATE TEMPORARY TABLE never_made (id int) ON COMMIT DROP")

    assert refused.value.__cause__.sqlstate == "25006"
    assert not read_only_server(refused.value)
