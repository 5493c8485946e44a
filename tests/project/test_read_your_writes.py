"""Read your writes (core/replica.py): what a user wrote is remembered by its WAL position, so that their next
lag-tolerant reads wait for a replica that has replayed it. What the position then does to the reads is tested
against a real standby in test_read_replica.py; here, when it is kept."""

import pytest
from django.core.cache import cache
from django.db import connection, transaction

from core.replica import WRITE_MARKER_KEY, _replica_chosen
from tasks.services import task_claim

pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


@pytest.fixture
def with_replica(settings):
    """A replica configured (its server is never reached here)."""
    settings.DATABASES = {**settings.DATABASES, "replica": {**settings.DATABASES["default"]}}


def kept_position(user):
    return cache.get(WRITE_MARKER_KEY.format(user_id=user.pk))


def wal_position() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


def test_a_writing_request_keeps_its_users_write_position(with_replica, api_as, caseworker_alice, make_task):
    task = make_task("intake")
    before = wal_position()

    assert api_as(caseworker_alice).post(f"/api/workflow/tasks/{task.pk}/claim").status_code == 200

    assert before <= kept_position(caseworker_alice) <= wal_position()


def test_a_reading_request_keeps_nothing(with_replica, api_as, caseworker_alice, make_task):
    task = make_task("intake")

    assert (
        api_as(caseworker_alice).get(f"/api/workflow/tasks/{task.pk}").status_code == 200
    )  # its access audit row is no write of hers to read back

    assert kept_position(caseworker_alice) is None


def test_without_a_replica_a_write_keeps_nothing(api_as, caseworker_alice, make_task):
    task = make_task("intake")

    assert api_as(caseworker_alice).post(f"/api/workflow/tasks/{task.pk}/claim").status_code == 200

    assert kept_position(caseworker_alice) is None


def test_a_service_run_outside_a_request_keeps_the_position_once_it_commits(
    with_replica, caseworker_alice, make_task, django_capture_on_commit_callbacks
):
    task = make_task("intake")

    with django_capture_on_commit_callbacks(execute=True):
        task_claim(user=caseworker_alice, task_id=task.pk)
        assert kept_position(caseworker_alice) is None  # not before the commit

    assert kept_position(caseworker_alice) <= wal_position()


def test_a_job_reading_inside_its_transaction_on_the_primary_reads_there(with_replica, db):
    # It may have written rows that no replica has.
    with transaction.atomic():
        assert not _replica_chosen()
