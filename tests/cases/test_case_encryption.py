"""Case text and case subjects are stored encrypted: plaintext to authorised users on pages, API and admin,
ciphertext in the database, no searching on it, and a marker (never a 500) for a value whose key is gone."""

import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from cases.models import Case, CaseEvent, CaseSubject
from cases.privacy.redaction import REDACTED_TITLE
from cases.selectors import TimelineKind, case_subjects_matching, case_timeline
from cases.services import case_open, case_subject_add
from core import encryption
from core.encrypted_fields import EncryptedFieldLookup, Unreadable
from core.errors import InvalidInput
from tasks.bpmn.workflows import definition_deploy
from tasks.models import WorkflowTask
from tasks.services import task_move

pytestmark = pytest.mark.django_db
DEMO_BPMN = Path(__file__).resolve().parents[2] / "tasks" / "bpmn" / "onecms_case_handling.bpmn"
DESCRIPTION = "The depot manager reported it on a Friday."
ALLEGATION = "Supplier invoices were altered before payment by Morgan Hale."
SUBJECT = {
    "role": "SUBJECT",
    "full_name": "Morgan Hale",
    "email": "Morgan.Hale@Supplier.example",
    "phone": "+44 20 7946 0101",
    "date_of_birth": "1979-04-12",
    "notes": "Signs the supplier's invoices.",
}
WITNESS = {"role": "WITNESS", "full_name": "Aoife Byrne"}


@pytest.fixture
def deployed(supervisor_sam):
    return definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())


@pytest.fixture
def case(deployed, caseworker_alice):
    return case_open(
        user=caseworker_alice,
        title="Invoices at the north depot",
        description=DESCRIPTION,
        allegations=[{"type": "FRAUD", "description": ALLEGATION, "date": "2026-01-15"}],
        subjects=[SUBJECT, WITNESS],
    )


def stored(table: str, column: str, key: str, value) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column}::text FROM {table} WHERE {key} = %s", [value])
        return cursor.fetchone()[0]


def test_case_description_and_allegation_descriptions_are_stored_sealed(case):
    description = stored("onecms.cases", "description", "case_id", case.pk)
    allegations = stored("onecms.cases", "allegations", "case_id", case.pk)
    assert encryption.is_sealed(description)
    assert DESCRIPTION not in description and "Morgan" not in allegations
    assert '"type": "FRAUD"' in allegations and '"date": "2026-01-15"' in allegations  # still filterable
    fresh = Case.objects.get(pk=case.pk)
    assert fresh.description == DESCRIPTION
    assert fresh.allegations == [{"type": "FRAUD", "description": ALLEGATION, "date": "2026-01-15"}]


def test_the_opened_event_keeps_no_copy_of_the_descriptions(case):
    event = CaseEvent.objects.get(case=case, event_type="OPENED")
    assert event.new_values["allegations"] == [{"type": "FRAUD", "date": "2026-01-15"}]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT old_values::text || new_values::text FROM onecms.case_events WHERE case_id = %s", [case.pk]
        )
        events = " ".join(row[0] for row in cursor.fetchall())
    assert "altered" not in events and "Morgan" not in events


def test_the_title_and_the_opened_events_copy_of_it_are_stored_sealed(case):
    assert encryption.is_sealed(stored("onecms.cases", "title", "case_id", case.pk))
    with connection.cursor() as cursor:
        cursor.execute("SELECT new_values::text FROM onecms.case_events WHERE case_id = %s", [case.pk])
        events = " ".join(row[0] for row in cursor.fetchall())
    assert "north depot" not in events and "enc:v1:" in events
    assert Case.objects.get(pk=case.pk).title == "Invoices at the north depot"
    assert CaseEvent.objects.get(case=case, event_type="OPENED").new_values["title"] == "Invoices at the north depot"


def test_a_redacted_title_stays_a_clear_marker(case):
    Case.objects.filter(pk=case.pk).update(title=REDACTED_TITLE)
    assert stored("onecms.cases", "title", "case_id", case.pk) == REDACTED_TITLE  # check_integrity reads it in SQL


def test_routing_hop_reasons_are_stored_sealed_and_shown_opened(case, supervisor_sam, caseworker_alice, api_as):
    task = WorkflowTask.objects.get(process_instance__case_mapping__case=case, status="OPEN")
    task_move(user=supervisor_sam, task_id=task.pk, queue_name="triage", reason="Morgan Hale's manager works intake")

    hops = stored("onecms.case_workflow_mapping", "routing_history", "case_id", case.pk)
    assert "Morgan" not in hops and "works intake" not in hops and '"to_queue": "triage"' in hops
    shown = api_as(supervisor_sam).get(f"/api/cases/{case.pk}/").json()["workflows"][0]["routing_history"]
    assert shown[-1]["reason"] == "Morgan Hale's manager works intake" and shown[-1]["to_queue"] == "triage"
    timeline = case_timeline(user=supervisor_sam, case_id=case.pk, kinds={TimelineKind.ROUTING})
    assert "Morgan Hale's manager works intake" in [entry.comment for entry in timeline]


def test_rotation_reseals_titles_events_and_hop_reasons(case, settings):
    old_title = stored("onecms.cases", "title", "case_id", case.pk)
    settings.FIELD_ENCRYPTION_KEYS = [f"k-next:{Fernet.generate_key().decode()}", *settings.FIELD_ENCRYPTION_KEYS]
    with open("/dev/null", "w") as quiet:
        call_command("rotate_encryption_keys", "--no-progress", stdout=quiet)

    for table, column in (
        ("onecms.cases", "title"),
        ("onecms.case_events", "new_values"),
        ("onecms.case_workflow_mapping", "routing_history"),
    ):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT string_agg({column}::text, ' ') FROM {table} WHERE case_id = %s", [case.pk])
            text = cursor.fetchone()[0]
        keys = set(re.findall(r"enc:v1:([A-Za-z0-9_.-]+):", text))
        assert keys == {"k-next"}, (table, keys)
    assert stored("onecms.cases", "title", "case_id", case.pk) != old_title
    assert Case.objects.get(pk=case.pk).title == "Invoices at the north depot"


def test_subject_personal_fields_are_stored_sealed_with_keyed_hashes(case):
    subject = case.subjects.get(role="SUBJECT")
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(s)::text FROM onecms.case_subjects s WHERE subject_id = %s", [subject.pk])
        row = cursor.fetchone()[0]
    for value in ("Morgan", "Hale", "Supplier.example", "supplier.example", "7946", "1979", "invoices"):
        assert value not in row
    subject = CaseSubject.objects.get(pk=subject.pk)
    assert (subject.full_name, subject.email, str(subject.date_of_birth)) == (
        "Morgan Hale",
        SUBJECT["email"],
        "1979-04-12",
    )
    assert subject.email_hash.startswith(encryption.key_set().current_id + ":")


def test_subjects_are_found_by_exact_email_and_normalised_name_through_the_hashes(case):
    by_email = case_subjects_matching(email="  morgan.hale@supplier.EXAMPLE ")
    by_name = case_subjects_matching(full_name="MORGAN   hale")
    assert [s.full_name for s in by_email] == ["Morgan Hale"]
    assert [s.full_name for s in by_name] == ["Morgan Hale"]
    assert not case_subjects_matching(email="morgan.hale@other.example").exists()
    assert not case_subjects_matching(full_name="Morgan").exists()


def test_a_subject_added_later_is_recorded_without_personal_data(case, caseworker_alice):
    subject = case_subject_add(
        user=caseworker_alice, case_id=case.pk, subject={"role": "COMPLAINANT", "full_name": "Priya Natarajan"}
    )
    event = CaseEvent.objects.filter(case=case, event_type="SUBJECT_ADDED").latest("event_id")
    assert event.new_values == {"subject_id": subject.pk, "role": "COMPLAINANT"}


def test_subjects_are_validated_naming_the_field(deployed, caseworker_alice):
    with pytest.raises(InvalidInput) as raised:
        case_open(
            user=caseworker_alice,
            title="t",
            allegations=[{"type": "FRAUD", "description": "d"}],
            subjects=[
                {"role": "SUSPECT", "full_name": ""},
                {"role": "WITNESS", "full_name": "A", "date_of_birth": "x"},
            ],
        )
    assert set(raised.value.fields) == {"subjects[0].role", "subjects[0].full_name", "subjects[1].date_of_birth"}


# --- no searching on encrypted values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lookup, named",
    [
        ({"description__icontains": "depot"}, "cases.Case.description"),
        ({"description": "x"}, "cases.Case.description"),
        ({"allegations__0__description": "x"}, "cases.Case.allegations"),
        ({"allegations__icontains": "invoices"}, "cases.Case.allegations"),
        ({"subjects__email": "a@b.example"}, "cases.CaseSubject.email"),
        ({"title__startswith": "Invoices"}, "cases.Case.title"),
        ({"events__new_values__title": "x"}, "cases.CaseEvent.new_values"),
        ({"workflow_mappings__routing_history__0__reason": "x"}, "cases.CaseWorkflowMapping.routing_history"),
    ],
)
def test_filtering_on_an_encrypted_field_is_refused_naming_it(lookup, named):
    with pytest.raises(EncryptedFieldLookup) as raised:
        list(Case.objects.filter(**lookup))
    assert named in str(raised.value)
    assert "encrypted" in str(raised.value)


def test_the_refusal_points_at_the_keyed_hash_column_where_there_is_one():
    with pytest.raises(EncryptedFieldLookup, match="email_hash"):
        CaseSubject.objects.filter(email__iexact="a@b.example")


def test_clear_parts_stay_filterable(case):
    assert Case.objects.filter(allegations__0__type="FRAUD", description__isnull=False).filter(pk=case.pk).exists()


def test_api_filters_on_encrypted_fields_are_400_naming_the_field(case, api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    for parameter in ("description", "allegations__description", "subject_full_name", "subject_email__icontains"):
        response = client.get("/api/cases/", {parameter: "Morgan"})
        assert response.status_code == 400, parameter
        body = response.json()
        assert body["code"] == "encrypted_field_filter"
        assert parameter in body["fields"]


def test_api_finds_cases_by_subject_email_and_name(case, api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    found = client.get("/api/cases/", {"subject_email": "MORGAN.HALE@supplier.example"}).json()["results"]
    assert [c["id"] for c in found] == [case.pk]
    assert client.get("/api/cases/", {"subject_name": "aoife byrne"}).json()["results"][0]["id"] == case.pk
    assert client.get("/api/cases/", {"subject_name": "nobody"}).json()["results"] == []


# --- plaintext to authorised users ---------------------------------------------------------------------------------


def test_the_api_shows_plaintext_subjects_and_descriptions(case, api_as, caseworker_alice):
    body = api_as(caseworker_alice).get(f"/api/cases/{case.pk}").json()
    assert body["description"] == DESCRIPTION
    assert body["allegations"][0]["description"] == ALLEGATION
    assert body["subjects"][0] | {"id": None, "created_at": None} == {**SUBJECT, "id": None, "created_at": None}
    assert body["unreadable_fields"] == []


def test_the_api_opens_a_case_with_subjects(deployed, api_as, caseworker_alice):
    response = api_as(caseworker_alice).post(
        "/api/cases/",
        {"title": "t", "allegations": [{"type": "FRAUD", "description": "d"}], "subjects": [WITNESS]},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["subjects"][0]["full_name"] == "Aoife Byrne"


def test_the_case_page_shows_plaintext(case, caseworker_alice):
    client = Client()
    client.force_login(caseworker_alice)
    body = client.get(f"/cases/{case.pk}/").content.decode()
    for text in (DESCRIPTION, ALLEGATION, "Morgan Hale", SUBJECT["email"], "Aoife Byrne"):
        assert text in body


def test_admin_shows_plaintext_to_the_supervisor(case, supervisor_sam):
    client = Client()
    client.force_login(supervisor_sam)
    body = client.get(reverse("admin:cases_case_change", args=[case.pk])).content.decode()
    for text in (DESCRIPTION, "Morgan Hale", "Aoife Byrne", "Signs the supplier"):
        assert text in body
    listing = client.get(reverse("admin:cases_casesubject_changelist")).content.decode()
    assert "Morgan Hale" in listing


def test_people_outside_the_case_see_nothing_of_it(case, fraud_investigator_bob, api_as):
    assert api_as(fraud_investigator_bob).get(f"/api/cases/{case.pk}").status_code == 404


# --- a value whose key is gone -------------------------------------------------------------------------------------


@pytest.fixture
def case_under_a_lost_key(deployed, caseworker_alice):
    """A case written under key k-lost, then read with a key set that no longer holds it."""
    lost, current = encryption.generate_key_entry("k-lost"), encryption.generate_key_entry("k-now")
    with override_settings(FIELD_ENCRYPTION_KEYS=[lost]):
        case = case_open(
            user=caseworker_alice,
            title="Written under a lost key",
            description=DESCRIPTION,
            allegations=[{"type": "FRAUD", "description": ALLEGATION, "date": "2026-01-15"}],
            subjects=[SUBJECT],
        )
    with override_settings(FIELD_ENCRYPTION_KEYS=[current]):
        yield case


def test_a_value_under_an_unknown_key_reads_as_a_marker_and_saves_back_unchanged(case_under_a_lost_key):
    before = stored("onecms.cases", "description", "case_id", case_under_a_lost_key.pk)
    case = Case.objects.get(pk=case_under_a_lost_key.pk)
    assert isinstance(case.description, Unreadable)
    assert case.description == encryption.UNREADABLE_MARKER
    case.save()
    assert stored("onecms.cases", "description", "case_id", case.pk) == before


def test_api_answers_200_with_markers_and_the_unreadable_fields(case_under_a_lost_key, api_as, caseworker_alice):
    response = api_as(caseworker_alice).get(f"/api/cases/{case_under_a_lost_key.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == encryption.UNREADABLE_MARKER
    assert body["allegations"][0] == {
        "type": "FRAUD",
        "description": encryption.UNREADABLE_MARKER,
        "date": "2026-01-15",
    }
    assert body["subjects"][0]["full_name"] == encryption.UNREADABLE_MARKER
    assert body["unreadable_fields"] == [
        "description",
        "allegations[0].description",
        "subjects[0].full_name",
        "subjects[0].email",
        "subjects[0].phone",
        "subjects[0].date_of_birth",
        "subjects[0].notes",
    ]
    listing = api_as(caseworker_alice).get("/api/cases/")
    assert listing.status_code == 200


def test_case_page_and_admin_answer_200_with_markers(case_under_a_lost_key, caseworker_alice, supervisor_sam):
    page = Client()
    page.force_login(caseworker_alice)
    response = page.get(f"/cases/{case_under_a_lost_key.pk}/")
    assert response.status_code == 200
    assert "[unreadable:" in response.content.decode()
    admin = Client()
    admin.force_login(supervisor_sam)
    for url in (
        reverse("admin:cases_case_change", args=[case_under_a_lost_key.pk]),
        reverse("admin:cases_casesubject_changelist"),
        reverse("admin:cases_casesubject_change", args=[case_under_a_lost_key.subjects.get().pk]),
    ):
        response = admin.get(url)
        assert response.status_code == 200, url
        assert "[unreadable:" in response.content.decode()


def test_check_integrity_lists_the_rows_under_an_unknown_key(case_under_a_lost_key):
    from tasks.sla.maintenance import check_integrity

    violations = [v for v in check_integrity().violations if v.startswith("encrypted value unreadable")]
    subject = case_under_a_lost_key.subjects.get()
    assert (
        f"encrypted value unreadable: cases.Case {case_under_a_lost_key.pk} description: sealed under key 'k-lost', which is not in the key set"
        in violations
    )
    assert any(f"cases.CaseSubject {subject.pk} email_hash: keyed hash under key 'k-lost'" in v for v in violations)
    with pytest.raises(Exception, match="integrity violation"):
        call_command("check_integrity", stdout=open("/dev/null", "w"))


def test_an_encrypted_field_filter_reaching_the_api_error_mapping_is_a_400_naming_the_field():
    from core.api import exception_handler

    try:
        Case.objects.filter(description__startswith="The depot")
    except EncryptedFieldLookup as error:
        response = exception_handler(error, {})
    assert response.status_code == 400
    assert response.data["code"] == "encrypted_field_filter"
    assert list(response.data["fields"]) == ["description"]
    assert "cases.Case.description is encrypted" in response.data["detail"]


def test_a_planted_ciphertext_is_stored_as_text_not_opened_for_the_client(case, api_as, caseworker_alice):
    stolen = stored("onecms.cases", "description", "case_id", case.pk)  # as read from a dump
    response = api_as(caseworker_alice).post(
        "/api/cases/",
        {"title": "t", "description": stolen, "allegations": [{"type": "FRAUD", "description": stolen}]},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["description"] == stolen and body["allegations"][0]["description"] == stolen
    assert DESCRIPTION not in response.content.decode()
