"""The queues page: open tasks of my queues only, filters, cursor pages and a capped count, claim buttons where I may work."""

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from django.utils import timezone

from tasks.models import WorkflowTask
from tests.core.test_estimates import UNREACHABLE_CACHE

pytestmark = pytest.mark.django_db


def test_lists_open_tasks_of_my_queues_only(page_as, caseworker_alice, make_task):
    make_task("intake", name="Intake thing")
    make_task("fraud-investigation", name="Fraud thing")
    body = page_as(caseworker_alice).get("/inbox/queues/").content.decode()
    assert "Intake thing" in body and "Fraud thing" not in body


def test_filters_by_queue_priority_and_overdue(page_as, caseworker_alice, make_task):
    make_task("intake", name="Low intake", priority=10)
    make_task("triage", name="High triage", priority=90)
    late = make_task("triage", name="Late triage", priority=20)
    WorkflowTask.objects.filter(pk=late.pk).update(due_date=timezone.now() - timedelta(hours=1))
    client = page_as(caseworker_alice)
    assert "Low intake" not in client.get("/inbox/queues/?queue=triage").content.decode()
    body = client.get("/inbox/queues/?min_priority=50").content.decode()
    assert "High triage" in body and "Low intake" not in body
    body = client.get("/inbox/queues/?overdue=1").content.decode()
    assert "Late triage" in body and "High triage" not in body and "Overdue by" in body


def test_a_queue_filter_outside_my_queues_shows_nothing_of_it(page_as, caseworker_alice, make_task):
    make_task("fraud-investigation", name="Fraud thing")
    body = page_as(caseworker_alice).get("/inbox/queues/?queue=fraud-investigation").content.decode()
    assert "Fraud thing" not in body and "Pick one of your queues." in body


def test_bad_priority_filter_is_a_message_not_an_error(page_as, caseworker_alice):
    client = page_as(caseworker_alice)
    for query in (
        "min_priority=lots&page=-4",
        "min_priority=%C2%B2&page=%C2%B2",
        "page=" + "9" * 5000,
        "queue=intake%00&min_priority=%00",
    ):
        response = client.get(f"/inbox/queues/?{query}")
        assert response.status_code == 200, query
    assert "A whole number from 0 to 100." in response.content.decode()


def test_pages_through_long_lists_without_counting(page_as, caseworker_alice, make_task, django_assert_max_num_queries):
    from tasks.views import QUEUE_PAGE_SIZE
    from tests.tasks.test_concurrency import insert_open_tasks

    insert_open_tasks(QUEUE_PAGE_SIZE + 5, ["intake"])
    client = page_as(caseworker_alice)
    first = client.get("/inbox/queues/").content.decode()
    assert 'rel="next"' in first and 'rel="prev"' not in first
    response = client.get(link(first, "next"))
    assert response.status_code == 200, (link(first, "next"), response)
    second = response.content.decode()
    assert second.count("/claim/") == 5 and 'rel="next"' not in second and 'rel="prev"' in second
    assert client.get(link(second, "prev")).content.decode().count("/claim/") == QUEUE_PAGE_SIZE
    assert f"({QUEUE_PAGE_SIZE + 5})" in first  # counted exactly below the cap


def link(page: str, rel: str) -> str:
    """The pager's `rel` link of a rendered page, unescaped."""
    return "/inbox/queues/" + html.unescape(re.search(rf'<a href="([^"]+)" rel="{rel}"', page).group(1))


def test_a_count_past_the_cap_is_shown_as_such(page_as, caseworker_alice, monkeypatch):
    from tasks import views
    from tests.tasks.test_concurrency import insert_open_tasks

    insert_open_tasks(120, ["intake"])
    monkeypatch.setattr(views, "QUEUE_COUNT_CAP", 100)

    body = page_as(caseworker_alice).get("/inbox/queues/").content.decode()

    assert re.search(r"\((100\+|about [0-9,.]+( million)?)\)", body), body


def test_the_estimate_past_the_cap_is_planned_once_per_queues_and_filters(page_as, caseworker_alice, monkeypatch):
    from tasks import views
    from tests.tasks.test_concurrency import insert_open_tasks

    insert_open_tasks(120, ["intake"])
    monkeypatch.setattr(views, "QUEUE_COUNT_CAP", 100)
    client = page_as(caseworker_alice)

    def statements(*queries):
        with CaptureQueriesContext(connection) as captured:
            for query in queries:
                assert client.get("/inbox/queues/", query).status_code == 200
        sql = [entry["sql"] for entry in captured.captured_queries]
        return sum(s.startswith("EXPLAIN") for s in sql), sum("count(*)" in s for s in sql)

    assert statements({}, {}, {}) == (1, 3)  # counted every time, planned once
    assert statements({"min_priority": "0"}, {"min_priority": "0"}) == (1, 2)  # another list, its own estimate


@override_settings(CACHES=UNREACHABLE_CACHE)
def test_the_queue_page_past_its_cap_answers_when_the_cache_is_unreachable(page_as, caseworker_alice, monkeypatch):
    from tasks import views
    from tests.tasks.test_concurrency import insert_open_tasks

    insert_open_tasks(120, ["intake"])
    monkeypatch.setattr(views, "QUEUE_COUNT_CAP", 100)

    response = page_as(caseworker_alice).get("/inbox/queues/")

    assert response.status_code == 200
    assert re.search(r"\((100\+|about [0-9,.]+( million)?)\)", response.content.decode())


def test_view_only_queues_show_no_claim_button(page_as, supervisor_sam, make_task):
    task = make_task("intake", name="Watched")
    body = page_as(supervisor_sam).get("/inbox/queues/").content.decode()
    assert "Watched" in body
    assert f"/tasks/{task.pk}/claim/" not in body


def test_htmx_filter_request_gets_only_the_results(page_as, caseworker_alice, make_task):
    make_task("intake", name="Intake thing")
    response = page_as(caseworker_alice).get(
        "/inbox/queues/?queue=intake", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="queue-results"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="queue-results"') and "Intake thing" in body


def test_a_mangled_cursor_shows_the_first_page(page_as, caseworker_alice, make_task):
    make_task("intake", name="Intake thing")

    response = page_as(caseworker_alice).get("/inbox/queues/?cursor=not-a-cursor")

    assert response.status_code == 200 and "Intake thing" in response.content.decode()


def test_lists_in_claim_order_with_the_aging_boost_shown(page_as, caseworker_alice, make_task):
    make_task("intake", name="Plain fifty-five", priority=55)
    aged = make_task("intake", name="Aged fifty", priority=50)
    WorkflowTask.objects.filter(pk=aged.pk).update(priority_boost=6)
    client = page_as(caseworker_alice)

    body = client.get("/inbox/queues/?queue=intake&min_priority=56").content.decode()

    assert "Aged fifty" in body and "Plain fifty-five" not in body  # the filter is on claim-next's priority
    assert "56 <small" in body and "(50 + 6)" in body
    body = client.get("/inbox/queues/?queue=intake").content.decode()
    assert body.index("Aged fifty") < body.index("Plain fifty-five")


def test_each_row_links_its_task_page_and_posts_its_claim_to_its_own_task(page_as, caseworker_alice, make_task):
    """The links are made once per page (core/links.py), not reversed per row: each still names its own task."""
    tasks = {make_task(queue, name=f"Row {queue}").pk for queue in ("intake", "triage", "intake")}
    body = page_as(caseworker_alice).get("/inbox/queues/").content.decode()
    rows = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0]

    links = [resolve(href) for href in re.findall(r'<a href="([^"]+)">Row ', rows)]
    claims = [resolve(html.unescape(action)) for action in re.findall(r'<form method="post" action="([^"]+)"', rows)]

    assert {(m.url_name, m.kwargs["task_id"]) for m in links} == {("task-page", pk) for pk in tasks}
    assert {(m.url_name, m.kwargs["task_id"]) for m in claims} == {("task-page-claim", pk) for pk in tasks}
