"""export_subject: everything held about one person, as JSON; the export itself recorded."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cases.models import Case
from entitlements.models import SecurityEvent
from entitlements.services import api_token_create
from tasks.models import ArchivedTask

pytestmark = pytest.mark.django_db


def export(tmp_path, *args) -> dict:
    target = tmp_path / "export.json"
    call_command("export_subject", *args, "--output", str(target), stdout=open("/dev/null", "w"))
    return json.loads(target.read_text(encoding="utf-8"))


def test_a_users_export_holds_their_record_roles_tasks_history_cases_events_and_audit(
    tmp_path, closed_case, caseworker_alice, fraud_investigator_bob, client
):
    live = closed_case("EXPLIVE", allegation="FRAUD")
    archived = closed_case("EXPARCH", allegation="FRAUD", archived=True)
    api_token_create(user=fraud_investigator_bob, name="bob's laptop")
    client.post("/accounts/login/", {"username": "bob", "password": "wrong"})

    document = export(tmp_path, "--user", "bob")

    assert document["format"] == "onecms-person-export/1" and document["person"]["username"] == "bob"
    user = document["user"]
    assert (user["username"], user["email"], user["first_name"], user["last_name"]) == (
        "bob",
        "bob@example.org",
        "Bob",
        "Brown",
    )
    assert "password" not in json.dumps(user) and "digest" not in json.dumps(document["api_tokens"])
    assert [r["role__role_code"] for r in document["role_assignments"]] == ["fraud-investigator"]
    assert [t["name"] for t in document["api_tokens"]] == ["bob's laptop"]
    tasks = {(t["name"], t["archived"]) for t in document["tasks"]}
    assert tasks == {("Fraud investigation", False), ("Fraud investigation", True)}
    archived_task = ArchivedTask.objects.get(
        process_instance_id=archived.workflow_mappings.get().process_instance_id, name="Fraud investigation"
    )
    assert any(
        t["task_id"] == archived_task.pk and t["variables"]["findings"] == "EXPARCH findings" for t in document["tasks"]
    )
    # CREATED: the legal review that bob's completion opened is his step too.
    assert {(h["event_type"], h["archived"]) for h in document["task_history"]} == {
        ("CREATED", False),
        ("CREATED", True),
        ("CLAIMED", False),
        ("COMPLETED", False),
        ("CLAIMED", True),
        ("COMPLETED", True),
    }
    hops = {(h["case_number"], h["to_queue"]) for h in document["routing_hops"]}
    assert (live.case_number, "legal-review") in hops and (archived.case_number, "legal-review") in hops
    kinds = {e["event_type"] for e in document["security_events"]}
    assert {"ROLE_GRANTED", "TOKEN_CREATED", "LOGIN_FAILURE"} <= kinds
    assert document["cases"] == [] and document["case_events"] == []


def test_a_users_export_lists_the_cases_they_opened_with_their_text(tmp_path, closed_case):
    case = closed_case("EXPOPENED")

    document = export(tmp_path, "--user", "alice")

    mine = [c for c in document["cases"] if c["case_number"] == case.case_number]
    assert mine and mine[0]["title"] == "EXPOPENED title" and mine[0]["created_by__username"] == "alice"
    assert any(
        e["event_type"] == "OPENED" and e["case__case_number"] == case.case_number for e in document["case_events"]
    )


def test_a_case_subjects_export_holds_each_subject_row_and_its_case(tmp_path, closed_case):
    person = ("SUBJECT", "Nora Vale", "nora.vale@example.net")
    first = closed_case("EXPSUBJ1", subjects=(person,))
    second = closed_case("EXPSUBJ2", subjects=(("WITNESS", "Nora Vale", "NORA.VALE@example.net"),))
    closed_case("EXPOTHER", subjects=(("SUBJECT", "Someone Else", "else@example.net"),))

    document = export(tmp_path, "--subject-email", "nora.vale@example.net")

    assert {(s["case_number"], s["role"], s["full_name"]) for s in document["case_subjects"]} == {
        (first.case_number, "SUBJECT", "Nora Vale"),
        (second.case_number, "WITNESS", "Nora Vale"),
    }
    assert {c["case_number"] for c in document["cases"]} == {first.case_number, second.case_number}
    assert Case.objects.get(pk=first.pk).title in {c["title"] for c in document["cases"]}


def test_the_export_is_recorded_without_the_exported_data(tmp_path, caseworker_alice):
    export(tmp_path, "--user", "alice")

    event = SecurityEvent.objects.filter(event_type="PERSONAL_DATA_EXPORTED").latest("event_id")
    assert event.details["kind"] == "user" and event.details["user_id"] == caseworker_alice.pk
    assert "alice" not in json.dumps(event.details)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--user", "nobody"], "no user 'nobody'"),
        (["--subject-email", "nobody@example.net"], "no case subject with email 'nobody@example.net'"),
    ],
)
def test_an_unknown_person_is_one_line(tmp_path, demo_org, args, message):
    with pytest.raises(CommandError, match=f"^{message}$"):
        export(tmp_path, *args)
    assert not (tmp_path / "export.json").exists()
