"""A queue's business calendar is cached between tasks and re-read after any edit that can change it."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from entitlements.models import Department
from queues.models import BusinessHoliday, DepartmentCalendar, WorkflowQueue
from queues.selectors import business_calendar_for
from queues.services import business_calendar_save

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def cache_on(settings):
    settings.WORK_CALENDAR_CACHE_SECONDS = 300


@pytest.fixture
def london(demo_org, django_capture_on_commit_callbacks):
    DepartmentCalendar.objects.all().delete()
    WorkflowQueue.objects.update(business_calendar=None)
    with django_capture_on_commit_callbacks(execute=True):  # as if each edit committed
        return business_calendar_save(
            name="Cache London", time_zone="Europe/London", holidays={"2026-01-12": "Move"}, departments=["legal"]
        )


def committed(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks(execute=True)


def calendar_queries(queue_name: str) -> tuple[object, int]:
    queue = WorkflowQueue.objects.get(queue_name=queue_name)
    with CaptureQueriesContext(connection) as queries:
        calendar = business_calendar_for(queue=queue)
    return calendar, len(queries)


def test_the_second_task_of_a_queue_reads_no_calendar_rows(london):
    first, reads = calendar_queries("legal-review")
    assert reads > 0 and first.holidays == (date(2026, 1, 12),)

    again, reads = calendar_queries("legal-review")

    assert reads == 0 and again == first


def test_a_cached_calendar_is_one_read_of_the_cache(london, monkeypatch):
    """The generation and the queue's entry come in one call (one round trip to Redis), not one each."""
    from django.core.cache import cache

    calendar_queries("legal-review")
    calls = []
    for name in ("get", "get_many", "add", "set"):
        method = getattr(cache, name)
        monkeypatch.setattr(
            cache, name, lambda *a, _name=name, _method=method, **k: calls.append(_name) or _method(*a, **k)
        )

    calendar_queries("legal-review")

    assert calls == ["get_many"]


def test_a_holiday_added_is_seen_by_the_next_task(london, django_capture_on_commit_callbacks):
    calendar_queries("legal-review")
    with committed(django_capture_on_commit_callbacks):
        BusinessHoliday.objects.create(calendar=london, date=date(2026, 1, 13), name="Second move")

    calendar, reads = calendar_queries("legal-review")

    assert reads > 0 and calendar.holidays == (date(2026, 1, 12), date(2026, 1, 13))


def test_a_department_moved_under_another_calendar_is_seen(london, django_capture_on_commit_callbacks):
    assert calendar_queries("intake")[0] is None  # investigations has no calendar: round the clock
    with committed(django_capture_on_commit_callbacks):
        business_calendar_save(name="Cache London", time_zone="Europe/London", departments=["legal", "investigations"])

    calendar, _ = calendar_queries("intake")

    assert calendar is not None and str(calendar.time_zone) == "Europe/London"


def test_a_queue_given_its_own_calendar_needs_no_invalidation(london):
    assert calendar_queries("intake")[0] is None
    WorkflowQueue.objects.filter(queue_name="intake").update(business_calendar=london)  # no signal: the key changes

    calendar, _ = calendar_queries("intake")

    assert calendar is not None and calendar.holidays == (date(2026, 1, 12),)


def test_an_uncommitted_change_is_never_cached(london):
    calendar_queries("legal-review")
    BusinessHoliday.objects.create(calendar=london, date=date(2026, 1, 14), name="Not committed")

    inside, reads = calendar_queries("legal-review")
    assert reads > 0 and date(2026, 1, 14) in inside.holidays
    assert calendar_queries("legal-review")[1] > 0  # read again, not remembered: it may roll back


def test_an_edit_of_the_department_tree_invalidates(london, django_capture_on_commit_callbacks):
    calendar_queries("legal-review")
    with committed(django_capture_on_commit_callbacks):
        Department.objects.get(dept_code="legal").save()

    assert calendar_queries("legal-review")[1] > 0


@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
)
def test_an_unreachable_cache_falls_back_to_the_database(london):
    calendar, reads = calendar_queries("legal-review")
    assert reads > 0 and calendar.holidays == (date(2026, 1, 12),)


def test_off_reads_every_time(london, settings):
    settings.WORK_CALENDAR_CACHE_SECONDS = 0
    calendar_queries("legal-review")
    assert calendar_queries("legal-review")[1] > 0


def test_due_dates_are_the_same_cached_or_not(london, settings):
    from tasks.services import task_insert

    queue = WorkflowQueue.objects.get(queue_name="legal-review")
    queue.sla_default_hours = 10
    queue.save(update_fields=["sla_default_hours"])
    cached = [task_insert(queue=queue, name=f"cached {n}").due_date for n in range(2)]
    settings.WORK_CALENDAR_CACHE_SECONDS = 0
    uncached = task_insert(queue=queue, name="uncached").due_date
    assert cached[0].tzinfo is not None and abs((cached[1] - uncached).total_seconds()) < 5
    assert abs((cached[0] - datetime.now(UTC)).total_seconds()) > 10 * 3600 - 5  # business hours, not wall hours
