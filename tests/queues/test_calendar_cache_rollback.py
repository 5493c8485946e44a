"""A calendar edit that rolls back: the thread that made it goes back to the cache once its transaction is over.

A rollback runs no hook, so the thread must find out by itself that the writing transaction has ended. Before it
did, one rolled-back edit left every later task of that thread reading its calendar from the database (the whole
test suite's order showed it: 15 statements for a completion instead of 12). Real commits and rollbacks, so this
runs outside the test transaction (committed_db); nothing it writes survives the rollback.
"""

import pytest
from django.db import transaction

from entitlements.models import Department
from tests.queues.test_calendar_cache import calendar_queries


class Abandoned(Exception):
    pass


@pytest.fixture
def cache_on(settings):
    settings.WORK_CALENDAR_CACHE_SECONDS = 300


def test_a_rolled_back_edit_stops_bypassing_the_cache_when_its_transaction_ends(committed_db, cache_on):
    with transaction.atomic():
        calendar_queries("legal-review")

    with pytest.raises(Abandoned), transaction.atomic():
        Department.objects.get(dept_code="legal").save()  # the calendars' receivers mark the thread
        assert calendar_queries("legal-review")[1] > 0  # inside the writer: never from the cache
        raise Abandoned

    with transaction.atomic():
        calendar_queries("legal-review")  # finds the writer gone (one question to PostgreSQL)
    with transaction.atomic():
        assert calendar_queries("legal-review")[1] == 0
