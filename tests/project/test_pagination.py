"""core/pagination.py: keyset pages that follow the whole key, forwards and back, and counts that say what they are."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.pagination import AT_LEAST, ESTIMATE, ApproximateCount, InvalidCursor, KeysetList
from entitlements.row_scope import SYSTEM, row_scope
from tasks.models import TaskStatus, WorkflowTask

pytestmark = pytest.mark.django_db

ORDERING = ["-priority", "created_at", "task_id"]


@pytest.fixture
def tied_tasks(demo_org):
    """45 tasks in two queues and three statuses, with many ties on priority and on created_at."""
    now = timezone.now()
    WorkflowTask.objects.bulk_create(
        WorkflowTask(
            name=f"t{n}",
            queue_id=("intake", "triage")[n % 2],
            status=(TaskStatus.OPEN, TaskStatus.CANCELLED, TaskStatus.ESCALATED)[n % 3],
            priority=(10, 50)[n % 4 == 0],
            created_at=now - timedelta(seconds=n % 5),
        )
        for n in range(45)
    )
    with row_scope(SYSTEM):
        yield WorkflowTask.objects.filter(queue_id__in=["intake", "triage"])


def expected(queryset) -> list[int]:
    return list(queryset.order_by(*ORDERING).values_list("pk", flat=True))


def walk(listing, size) -> tuple[list[int], list[int]]:
    """Every page forwards by `next`, then back from the last by `previous`: the pks in the order read."""
    forwards, cursor, pages = [], None, []
    while True:
        page = listing.page(cursor=cursor, size=size)
        pages.append(page)
        forwards.extend(row.pk for row in page.rows)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    backwards, page = [row.pk for row in pages[-1].rows], pages[-1]
    while page.previous_cursor:
        page = listing.page(cursor=page.previous_cursor, size=size)
        backwards = [row.pk for row in page.rows] + backwards
    return forwards, backwards


@pytest.mark.parametrize(
    "partitions",
    [None, {"queue": ["intake", "triage"]}, {"queue": ["intake", "triage"], "status": list(TaskStatus.values)}],
    ids=["one probe", "a probe per queue", "a probe per queue and status"],
)
def test_pages_follow_the_whole_key_forwards_and_back(tied_tasks, partitions):
    listing = KeysetList(tied_tasks, ordering=ORDERING, partitions=partitions)

    forwards, backwards = walk(listing, size=7)

    assert forwards == expected(tied_tasks)
    assert backwards == forwards


def test_filters_are_kept_in_every_probe(tied_tasks):
    open_ones = tied_tasks.filter(status=TaskStatus.OPEN, priority__gte=50)
    listing = KeysetList(open_ones, ordering=ORDERING, partitions={"queue": ["intake", "triage", "legal-review"]})

    forwards, _ = walk(listing, size=2)

    assert forwards == expected(open_ones) and forwards


def test_a_page_of_no_partitions_is_empty(tied_tasks):
    page = KeysetList(tied_tasks, ordering=ORDERING, partitions={"queue": []}).page()
    assert (page.rows, page.next_cursor, page.previous_cursor) == ([], None, None)


@pytest.mark.parametrize("cursor", ["garbage", "eyJvIjoidGFza19pZCIsImsiOlsxXSwiYiI6ZmFsc2V9", "e30"])
def test_a_cursor_it_did_not_make_is_refused(tied_tasks, cursor):
    # The second is a well-formed cursor for another ordering (task_id), the third an empty object.
    with pytest.raises(InvalidCursor):
        KeysetList(tied_tasks, ordering=ORDERING).page(cursor=cursor)


def test_a_filter_that_joins_another_table_is_refused(tied_tasks):
    with pytest.raises(ValueError, match="join"):
        KeysetList(tied_tasks.filter(assignee__username="alice"), ordering=ORDERING).page()


def test_an_ordering_must_end_with_the_primary_key_and_hold_no_nullable_field(tied_tasks):
    with pytest.raises(ValueError, match="primary key"):
        KeysetList(tied_tasks, ordering=["-priority"])
    with pytest.raises(ValueError, match="nullable"):
        KeysetList(tied_tasks, ordering=["due_date", "task_id"])


def test_counts_exactly_up_to_the_cap_then_says_it_stopped(tied_tasks):
    listing = KeysetList(tied_tasks, ordering=ORDERING, partitions={"queue": ["intake", "triage"]})

    assert listing.count(cap=100) == ApproximateCount(45)
    capped = listing.count(cap=10)
    assert capped.kind in (AT_LEAST, ESTIMATE) and capped.value >= 10


def test_counting_past_the_cap_reads_only_the_cap(tied_tasks):
    listing = KeysetList(tied_tasks, ordering=ORDERING, partitions={"queue": ["intake", "triage"]})
    statement, params = listing.count_sql(cap=10)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        assert cursor.fetchone() == (11,)


@pytest.mark.parametrize(
    "count, shown",
    [
        (ApproximateCount(0), "0"),
        (ApproximateCount(1234), "1,234"),
        (ApproximateCount(2000, AT_LEAST), "2,000+"),
        (ApproximateCount(45_678, ESTIMATE), "about 46,000"),
        (ApproximateCount(1_234_567, ESTIMATE), "about 1.2 million"),
        (ApproximateCount(3_000_000, ESTIMATE), "about 3 million"),
    ],
)
def test_a_count_reads_as_what_it_is(count, shown):
    assert str(count) == shown
