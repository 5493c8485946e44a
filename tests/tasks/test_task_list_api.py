"""GET /api/workflow/tasks/ pages by cursor: `next`/`previous` links, a count that says whether it is exact, and a
clear 400 for a client that still sends page numbers."""

import pytest
import yaml

from tests.tasks.test_concurrency import insert_open_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def hundred_and_twenty_tasks(demo_org):
    insert_open_tasks(120, ["intake", "triage"])


def ids(body) -> list[int]:
    return [task["id"] for task in body["results"]]


def test_pages_follow_next_and_previous_links(api_as, caseworker_alice, hundred_and_twenty_tasks):
    client = api_as(caseworker_alice)

    first = client.get("/api/workflow/tasks/").json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    back = client.get(third["previous"]).json()

    assert (len(ids(first)), len(ids(second)), len(ids(third))) == (50, 50, 20)
    assert first["previous"] is None and third["next"] is None and "cursor=" in first["next"]
    assert len(set(ids(first) + ids(second) + ids(third))) == 120
    assert ids(back) == ids(second)
    assert (first["count"], first["count_kind"]) == (120, "exact")


def test_pages_keep_the_filters_and_ordering_of_the_first(api_as, caseworker_alice, hundred_and_twenty_tasks):
    client = api_as(caseworker_alice)

    first = client.get("/api/workflow/tasks/", {"queue": "intake", "ordering": "-task_id"}).json()
    second = client.get(first["next"]).json()

    listed = ids(first) + ids(second)
    assert listed == sorted(listed, reverse=True) and len(listed) == 60


def test_a_page_number_is_a_400_that_names_page_and_points_to_the_cursor(api_as, caseworker_alice):
    response = api_as(caseworker_alice).get("/api/workflow/tasks/", {"page": 2})

    assert response.status_code == 400
    body = response.json()
    assert "page" in body["fields"] and "cursor" in body["fields"]["page"][0]


def test_a_mangled_cursor_is_a_400_that_names_cursor(api_as, caseworker_alice):
    response = api_as(caseworker_alice).get("/api/workflow/tasks/", {"cursor": "not-a-cursor"})

    assert response.status_code == 400
    assert "cursor" in response.json()["fields"]


def test_the_schema_documents_the_cursor_and_the_refused_page_number(api_as, caseworker_alice):
    schema = yaml.safe_load(api_as(caseworker_alice).get("/api/schema/").content)

    operation = schema["paths"]["/api/workflow/tasks/"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert "cursor" in parameters and parameters["page"]["deprecated"] is True
    assert "cursor" in parameters["page"]["description"]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert {"count", "count_kind", "next", "previous", "results"} <= set(body["properties"])
