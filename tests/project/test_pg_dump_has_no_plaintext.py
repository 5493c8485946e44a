"""A pg_dump of a database with the demo's cases holds none of their sensitive text: allegation descriptions,
the people's names, emails and phone numbers, and the form values marked sensitive are all encrypted."""

import shutil
import subprocess

from django.core.management import call_command

from cases import demo
from cases.models import Case, CaseSubject
from tasks.models import WorkflowTask

SENSITIVE_FORM_VALUES = ["Evidence supports the allegation.", "Interviews held.", "Refer for disciplinary action."]


def dump(database_url: str) -> str:
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is not on PATH (postgresql-client)"
    result = subprocess.run(
        [pg_dump, "--no-owner", "--dbname", database_url], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_dump_of_the_seeded_demo_holds_no_sensitive_plaintext(committed_db, test_database_url, monkeypatch):
    # The dashboards' materialized views are left as they were: other tests read them.
    monkeypatch.setattr("cases.management.commands.seed_demo.refresh_dashboards", lambda: None)
    with open("/dev/null", "w") as quiet:
        call_command("seed_demo", "--cases", "10", stdout=quiet)
    # The demo put the texts in: the cases read them back in plaintext, and some sensitive forms were completed.
    descriptions = {a["description"] for case in Case.objects.all() for a in case.allegations}
    assert descriptions == set(demo.DEMO_ALLEGATION_TEXT.values())
    people = list(CaseSubject.objects.all())
    assert {p.full_name for p in people} == {s["full_name"] for group in demo.DEMO_SUBJECTS for s in group}
    assert WorkflowTask.objects.filter(task_definition_key="legal_review", status="COMPLETED").exists()

    titles = [case.title for case in Case.objects.all()]
    assert len(titles) == 10 and all(title.startswith(demo.DEMO_CASE_PREFIX) for title in titles)

    text = dump(test_database_url)

    assert "onecms.case_subjects" in text and "enc:v1:" in text  # the dump has the tables, sealed
    secrets = [
        *demo.DEMO_ALLEGATION_TEXT.values(),
        *SENSITIVE_FORM_VALUES,
        *titles,
        "next step: ",  # the routing hops' reasons the demo's workflow writes
        *(value for group in demo.DEMO_SUBJECTS for s in group for key, value in s.items() if key != "role"),
    ]
    # Whole values: each has a space, '@', '+' or '.', none of which a sealed value's base64 holds, so a match is a
    # leak and never chance.
    leaked = [secret for secret in secrets if secret in text]
    assert leaked == []
