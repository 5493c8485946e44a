"""The case list (GET /api/cases/ and the /cases/ page, cases/selectors.py: case_list, cases/pagination.py): cursor
pages newest first, a count that says whether it is exact, capped or estimated, page numbers refused with a 400
naming `page`, and only the caller's cases, whichever way the scope is read."""

import re
from base64 import b64encode
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.urls import resolve

from cases import selectors
from cases.models import Case
from cases.pagination import CaseCursorPagination, CountFigure, CountKind
from entitlements.access import queue_names_for
from entitlements.models import Capability
from entitlements.row_scope import acting_as
from tests.cases.test_case_scope_plans import generate_cases
from tests.console.helpers import legal_supervisor

pytestmark = pytest.mark.django_db

GENERATED = 200
SMALL_PAGE = 7
READINGS = pytest.mark.parametrize("read_matches", [True, False], ids=["reading the matches", "walking the cases"])


@pytest.fixture
def lena(demo_org):
    """Views the Legal department's queues (legal-review) only."""
    return legal_supervisor()


@pytest.fixture
def generated(lena):
    """GENERATED cases: alice's queues (intake, triage) reach them all, bob's (fraud-investigation) a fifth,
    lena's (legal-review) one in a hundred; lena is also the assignee and creator of one in a thousand."""
    generate_cases(GENERATED, assignee=lena, creator=lena)


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(CaseCursorPagination, "page_size", SMALL_PAGE)


def reading(monkeypatch, read_matches: bool) -> None:
    monkeypatch.setattr(selectors, "MATCH_READ_COST", 0 if read_matches else float("inf"))


def expected_ids(user) -> list[int]:
    """The rule written out independently of the selectors: a task of one of the case's workflows in a queue the
    user may view, or assigned to them, or opened by them; newest first."""
    queues = queue_names_for(user=user, capability=Capability.VIEW)
    rule = Q(workflow_mappings__process_instance__tasks__queue_id__in=queues) | Q(assigned_to=user) | Q(created_by=user)
    return sorted(set(Case.objects.filter(rule).values_list("pk", flat=True)), reverse=True)


def listed_ids(client, **params) -> list[int]:
    """Every page of the list, following `next`."""
    ids, url = [], "/api/cases/"
    while url:
        response = client.get(url, params)
        assert response.status_code == 200, response.content
        body = response.json()
        ids += [row["id"] for row in body["results"]]
        url, params = body["next"], {}
    return ids


@READINGS
def test_pages_follow_the_cursor_newest_first_through_exactly_the_callers_cases(
    api_as, generated, small_pages, monkeypatch, fraud_investigator_bob, read_matches
):
    reading(monkeypatch, read_matches)

    ids = listed_ids(api_as(fraud_investigator_bob))

    assert ids == expected_ids(fraud_investigator_bob)
    assert len(ids) > 3 * SMALL_PAGE


@READINGS
def test_cases_outside_the_callers_queues_are_never_listed(
    api_as, generated, small_pages, monkeypatch, lena, caseworker_alice, read_matches
):
    reading(monkeypatch, read_matches)

    ids = listed_ids(api_as(lena))

    assert ids == expected_ids(lena)
    assert len(ids) < len(expected_ids(caseworker_alice))


def test_the_previous_link_returns_the_page_before(api_as, generated, small_pages, fraud_investigator_bob):
    client = api_as(fraud_investigator_bob)
    first = client.get("/api/cases/").json()
    second = client.get(first["next"]).json()

    back = client.get(second["previous"]).json()

    assert [row["id"] for row in back["results"]] == [row["id"] for row in first["results"]]
    assert first["previous"] is None


def test_a_page_number_beyond_the_first_is_a_400_naming_page_and_the_cursor(api_as, generated, caseworker_alice):
    response = api_as(caseworker_alice).get("/api/cases/", {"page": 2})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "page_numbers_not_supported"
    assert "cursor" in body["fields"]["page"][0]


def test_page_one_is_the_first_page(api_as, generated, caseworker_alice):
    client = api_as(caseworker_alice)

    assert client.get("/api/cases/", {"page": 1}).json()["results"] == client.get("/api/cases/").json()["results"]


@pytest.mark.parametrize(
    "cursor",
    ["not-base64!", b64encode(b"p=DROP").decode(), b64encode(b"o=-1&p=5").decode(), b64encode(b"r=x").decode()],
    ids=["not base64", "position not a number", "negative offset", "reverse not a number"],
)
def test_a_malformed_cursor_is_a_400_naming_cursor(api_as, generated, caseworker_alice, cursor):
    response = api_as(caseworker_alice).get("/api/cases/", {"cursor": cursor})

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_cursor"
    assert "cursor" in response.json()["fields"]


def test_a_small_scope_is_counted_exactly(api_as, generated, lena):
    body = api_as(lena).get("/api/cases/").json()

    expected = len(expected_ids(lena))
    assert (body["count"], body["count_kind"], body["count_display"]) == (expected, CountKind.EXACT, str(expected))


def test_a_count_that_reaches_the_cap_says_at_least(generated, monkeypatch, lena):
    monkeypatch.setattr(selectors, "COUNT_CAP", 2)
    # A filtered list has no estimate: it is counted, up to the cap.
    listing = selectors.case_list(user=lena, condition=Q(status="IN_PROGRESS"))

    figure = listing.count()

    assert (figure.value, figure.kind, figure.display) == (2, CountKind.AT_LEAST, "2+")


def test_a_scope_above_the_cap_is_the_planners_estimate_and_never_counted(
    api_as, generated, monkeypatch, caseworker_alice
):
    monkeypatch.setattr(selectors, "COUNT_CAP", 10)
    client = api_as(caseworker_alice)

    with CaptureQueriesContext(connection) as captured:
        body = client.get("/api/cases/").json()

    assert body["count_kind"] == CountKind.ESTIMATE
    assert GENERATED / 2 <= body["count"] <= GENERATED * 2
    assert body["count_display"].startswith("about ")
    assert not [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]


def test_the_list_runs_a_fixed_number_of_queries(api_as, generated, caseworker_alice, django_assert_max_num_queries):
    client = api_as(caseworker_alice)
    client.get("/api/cases/")  # the token's first use is recorded once

    # token, queue names, the capped count (GENERATED is below the cap), page; the estimate is cached
    with django_assert_max_num_queries(4):
        assert client.get("/api/cases/").status_code == 200


def estimate_plans(captured) -> int:
    return sum("case_scope_estimate" in query["sql"] for query in captured.captured_queries)


def test_the_scope_estimate_is_planned_once_per_set_of_queues_while_the_rows_stay_live(
    api_as, generated, caseworker_alice, lena
):
    alice, lena_client = api_as(caseworker_alice), api_as(lena)
    with CaptureQueriesContext(connection) as first:
        alice.get("/api/cases/")
        lena_before = lena_client.get("/api/cases/").json()
    new_case = Case.objects.create(case_number="LIVE-0001", title="opened after the estimate", assigned_to=lena)

    with CaptureQueriesContext(connection) as again:
        assert alice.get("/api/cases/").status_code == 200
        lena_after = lena_client.get("/api/cases/").json()

    assert (estimate_plans(first), estimate_plans(again)) == (2, 0)  # one per set of queues, then none
    assert lena_after["results"][0]["id"] == new_case.pk
    assert lena_after["count"] == lena_before["count"] + 1  # a small scope is counted, every time


def test_without_the_estimate_cache_every_list_plans_its_estimate(api_as, generated, caseworker_alice, settings):
    settings.LIST_ESTIMATE_CACHE_SECONDS = 0
    client = api_as(caseworker_alice)

    with CaptureQueriesContext(connection) as captured:
        client.get("/api/cases/")
        client.get("/api/cases/")

    assert estimate_plans(captured) == 2


def test_the_schema_documents_the_cursor_the_refused_page_number_and_the_count(api_as, caseworker_alice):
    schema = api_as(caseworker_alice).get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"]["/api/cases/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert "cursor" in parameters
    assert "400" in parameters["page"]["description"]
    listing = schema["components"]["schemas"][
        operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    ]
    assert {"count", "count_kind", "count_display", "next", "previous", "results"} <= set(listing["properties"])
    assert "page" not in listing["properties"]


def test_the_case_list_page_shows_the_callers_cases_newest_first_with_a_link_to_older(
    client, generated, small_pages, fraud_investigator_bob
):
    client.force_login(fraud_investigator_bob)
    newest, *_ = expected_ids(fraud_investigator_bob)

    page = client.get("/cases/")

    assert page.status_code == 200
    html = page.content.decode()
    assert Case.objects.get(pk=newest).case_number in html
    assert 'rel="next"' in html
    assert page.context["count"].kind == CountKind.EXACT


def test_each_row_of_the_case_list_page_links_its_case_and_shows_when_it_opened_in_local_time(
    client, generated, small_pages, caseworker_alice, settings
):
    """The links and times are made by the view once per page (cases/views.py: with_row_labels): each link still
    leads to its own case page and each time reads in the site's time zone."""
    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+05:30: a shift no formatting in UTC could pass for
    client.force_login(caseworker_alice)

    body = client.get("/cases/").content.decode().split("<tbody>", 1)[1].split("</tbody>", 1)[0]

    rows = re.findall(r'<a href="([^"]+)">([^<]+)</a>.*?data-label="Opened">([^<]+)</td>', body, re.S)
    assert len(rows) == SMALL_PAGE
    for href, case_number, opened in rows:
        match = resolve(urljoin("/cases/", href))
        assert match.url_name == "case-page"
        case = Case.objects.get(pk=match.kwargs["case_id"])
        assert case.case_number == case_number
        assert opened == case.created_at.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%-d %b %Y, %H:%M")


def test_the_case_list_page_leaves_the_descriptions_and_allegations_sealed(client, generated, fraud_investigator_bob):
    """The page shows titles only: the rows' descriptions and allegations are neither read nor decrypted."""
    client.force_login(fraud_investigator_bob)
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/cases/").status_code == 200
    rows = [query["sql"] for query in captured.captured_queries if '"onecms"."cases"."title"' in query["sql"]]
    assert rows, captured.captured_queries
    assert not [sql for sql in rows if '"description"' in sql or '"allegations"' in sql], rows


def test_the_case_list_page_lists_no_case_outside_the_callers_queues(client, generated, lena):
    client.force_login(lena)
    hidden = Case.objects.exclude(pk__in=expected_ids(lena)).order_by("-pk").first()

    html = client.get("/cases/").content.decode()

    assert f">{hidden.case_number}<" not in html


def test_the_case_list_page_answers_a_page_number_with_a_400_that_says_to_follow_the_links(
    client, generated, caseworker_alice
):
    client.force_login(caseworker_alice)

    page = client.get("/cases/", {"page": 3})

    assert page.status_code == 400
    assert "cursor" in page.content.decode()


@pytest.mark.parametrize(
    ("figure", "shown"),
    [
        (CountFigure(1234, CountKind.EXACT), "1,234"),
        (CountFigure(2000, CountKind.AT_LEAST), "2,000+"),
        (CountFigure(1_234_567, CountKind.ESTIMATE), "about 1.2 million"),
        (CountFigure(243_517, CountKind.ESTIMATE), "about 240,000"),
        (CountFigure(2_049, CountKind.ESTIMATE), "about 2,000"),
    ],
)
def test_a_count_is_shown_as_what_it_is(figure, shown):
    assert figure.display == shown


def test_the_walks_test_answers_only_for_queues_the_acting_user_may_view(generated, lena, caseworker_alice):
    newest_intake_case = expected_ids(caseworker_alice)[0]
    asked = "SELECT onecms.case_has_task_in_queues(%s, ARRAY['intake'])"

    with acting_as(lena), connection.cursor() as cursor:
        cursor.execute(asked, [newest_intake_case])
        as_lena = cursor.fetchone()[0]
    with acting_as(caseworker_alice), connection.cursor() as cursor:
        cursor.execute(asked, [newest_intake_case])
        as_alice = cursor.fetchone()[0]

    assert (as_lena, as_alice) == (False, True)
