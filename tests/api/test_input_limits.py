"""Malformed JSON bodies and unstorable text are refused with a 400 naming the field, never a 500."""

import json

import pytest

from cases.models import Case
from tasks.models import WorkflowTask

pytestmark = pytest.mark.django_db

CASES_URL = "/api/cases/"


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"n": value}
    return value


def open_case_body(**overrides) -> dict:
    body = {
        "title": "Forged invoices",
        "description": "Reported by the depot manager.",
        "allegations": [{"type": "FRAUD", "description": "Invoices altered.", "date": "2026-01-15"}],
    }
    body.update(overrides)
    return body


def post_raw(client, url: str, text: str):
    return client.post(url, data=text.encode("utf-8", "surrogatepass"), content_type="application/json")


def test_json_nested_five_thousand_deep_is_a_400_not_a_recursion_error(api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    text = '{"variables": ' + "[" * 5000 + "]" * 5000 + ', "title": "x"}'

    response = post_raw(client, CASES_URL, text)

    assert response.status_code == 400
    assert "nests too deeply" in response.json()["detail"]


def test_json_deeper_than_the_limit_is_refused_naming_the_field(api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    body = open_case_body(variables=nested(40))

    response = client.post(CASES_URL, body, format="json")

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["variables" + ".n" * 31]
    assert not Case.objects.exists()


def test_a_lone_surrogate_in_an_allegation_is_a_400_naming_it(api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    text = json.dumps(open_case_body()).replace("Invoices altered.", "Invoices \\ud800 altered.")

    response = post_raw(client, CASES_URL, text)

    assert response.status_code == 400
    assert response.json()["fields"] == {"allegations[0].description": ["Must not contain unpaired UTF-16 surrogates."]}
    assert not Case.objects.exists()


def test_a_nul_in_an_allegation_description_is_a_400_naming_it(api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    body = open_case_body(allegations=[{"type": "FRAUD", "description": "bad\x00byte", "date": "2026-01-15"}])

    response = client.post(CASES_URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"allegations[0].description": ["Must not contain NUL (\\u0000) characters."]}
    assert not Case.objects.exists()


def test_a_lone_surrogate_in_task_variables_is_a_400(api_as, supervisor_sam):
    client = api_as(supervisor_sam)
    text = '{"queue": "intake", "name": "Review", "variables": {"note": "\\udfff"}}'

    response = post_raw(client, "/api/workflow/tasks/", text)

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["variables.note"]
    assert not WorkflowTask.objects.filter(name="Review").exists()


def test_a_nul_in_a_key_is_refused_too(api_as, supervisor_sam):
    client = api_as(supervisor_sam)

    response = client.post(
        "/api/workflow/tasks/", {"queue": "intake", "name": "Review", "variables": {"a\x00": 1}}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["variables.<key>"]


def test_a_nul_in_a_form_encoded_body_is_a_400(api_as, supervisor_sam):
    client = api_as(supervisor_sam)

    response = client.post("/api/workflow/tasks/", {"queue": "intake", "name": "Rev\x00iew"})

    assert response.status_code == 400
    assert response.json()["fields"] == {"name": ["Must not contain NUL (\\u0000) characters."]}


def test_ordinary_unicode_and_nesting_within_the_limit_are_accepted(api_as, supervisor_sam):
    client = api_as(supervisor_sam)

    response = client.post(
        "/api/workflow/tasks/",
        {"queue": "intake", "name": "Prüfung 🧾", "variables": {"deep": nested(20), "emoji": "😀"}},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert WorkflowTask.objects.get(pk=response.json()["id"]).variables["emoji"] == "😀"


def test_the_schema_types_an_allegation_as_the_server_checks_it():
    from drf_spectacular.generators import SchemaGenerator

    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    opening = components["CaseOpen"]["properties"]["allegations"]
    assert opening["type"] == "array" and opening["items"]["$ref"].endswith("/AllegationInput")
    allegation = components["AllegationInput"]
    assert set(allegation["required"]) == {"type", "description"}
    assert allegation["properties"]["type"]["$ref"].endswith("/AllegationTypeEnum")
    assert components["AllegationTypeEnum"]["enum"] == [
        "FRAUD",
        "MISCONDUCT",
        "HARASSMENT",
        "CONFLICT_OF_INTEREST",
        "OTHER",
    ]
