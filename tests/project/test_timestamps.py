"""Timestamps with a time zone round-trip through the ORM as the same instants, read back in UTC."""

import datetime

import pytest

pytestmark = pytest.mark.django_db


def test_orm_reads_and_writes_round_trip(make_task):
    from tasks.models import WorkflowTask

    due = datetime.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
    task = make_task("intake", due_date=due)
    loaded = WorkflowTask.objects.get(pk=task.pk)
    assert loaded.due_date == due and loaded.due_date.tzinfo is datetime.UTC
    assert WorkflowTask.objects.filter(pk=task.pk, due_date=due).exists()
