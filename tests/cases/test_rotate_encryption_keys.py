"""rotate_encryption_keys re-encrypts every sealed value under the current key, in resumable batches; afterwards
the old key can leave the key set and everything still opens. Values under a missing key are listed."""

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from cases.models import Case, CaseSubject
from cases.selectors import case_subjects_matching
from cases.services import case_open
from core import encryption, key_rotation
from tasks.bpmn.workflows import definition_deploy
from tasks.models import ProcessInstance, TaskHistory, WorkflowTask
from tasks.services import task_claim, task_complete

pytestmark = pytest.mark.django_db
DEMO_BPMN = Path(__file__).resolve().parents[2] / "tasks" / "bpmn" / "onecms_case_handling.bpmn"
OLD, NEW = encryption.generate_key_entry("k-2025"), encryption.generate_key_entry("k-2026")
NOTES = "Caller named the warehouse supervisor"
COMMENT = "Spoke with the complainant at home"
# Every place a sealed value lives: (table, column).
SEALED_COLUMNS = [
    ("onecms.cases", "description"),
    ("onecms.cases", "allegations"),
    ("onecms.case_subjects", "full_name"),
    ("onecms.case_subjects", "email"),
    ("onecms.case_subjects", "notes"),
    ("onecms.case_subjects", "email_hash"),
    ("onecms.case_subjects", "name_hash"),
    ("flowable.workflow_tasks", "variables"),
    ("flowable.process_instances", "variables"),
    ("flowable.process_instances", "engine_state"),
    ("flowable.task_history", "comment"),
]


@pytest.fixture
def data_under_the_old_key(supervisor_sam, caseworker_alice):
    """Three cases with subjects, each past intake with sensitive notes and a comment, written under OLD."""
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())
        cases = []
        for number in range(3):
            case = case_open(
                user=caseworker_alice,
                title=f"Rotation {number}",
                description=f"Description {number}",
                allegations=[{"type": "FRAUD", "description": f"Allegation {number}", "date": "2026-01-15"}],
                subjects=[
                    {
                        "role": "SUBJECT",
                        "full_name": f"Person {number}",
                        "email": f"p{number}@example.org",
                        "notes": "Works nights",
                    }
                ],
            )
            task = WorkflowTask.objects.get(process_instance__case_mapping__case=case, status="OPEN")
            task_claim(user=caseworker_alice, task_id=task.pk)
            task_complete(
                user=caseworker_alice,
                task_id=task.pk,
                variables={"received_on": "2026-01-16", "received_via": "PHONE", "intake_notes": NOTES},
                comment=COMMENT,
            )
            cases.append(case)
    return cases


def key_ids_in(table: str, column: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT m[1] FROM {table} t, regexp_matches(t.{column}::text, 'enc:v1:([A-Za-z0-9_.-]+):', 'g') m"
        )
        sealed = {row[0] for row in cursor.fetchall()}
        if column.endswith("_hash"):
            cursor.execute(f"SELECT DISTINCT split_part({column}, ':', 1) FROM {table} WHERE {column} <> ''")
            sealed |= {row[0] for row in cursor.fetchall()}
    return sealed


def all_key_ids() -> dict:
    return {f"{table}.{column}": key_ids_in(table, column) for table, column in SEALED_COLUMNS}


def rotate(*args) -> str:
    out = io.StringIO()
    call_command("rotate_encryption_keys", "--no-progress", *args, stdout=out)
    return out.getvalue()


def test_the_fixture_puts_a_sealed_value_in_every_column_under_the_old_key(data_under_the_old_key):
    assert all_key_ids() == {name: {"k-2025"} for name in all_key_ids()}


def test_rotation_re_encrypts_every_value_and_the_old_key_can_then_be_removed(data_under_the_old_key):
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        output = rotate("--batch-size", "2")
        assert "Every encrypted value is under the current key." in output
    assert all_key_ids() == {name: {"k-2026"} for name in all_key_ids()}
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        case = Case.objects.get(pk=data_under_the_old_key[1].pk)
        assert case.description == "Description 1"
        assert case.allegations[0]["description"] == "Allegation 1"
        subject = case.subjects.get()
        assert (subject.full_name, subject.email) == ("Person 1", "p1@example.org")
        assert [s.pk for s in case_subjects_matching(email="P1@example.org")] == [subject.pk]
        task = WorkflowTask.objects.filter(process_instance__case_mapping__case=case).earliest("task_id")
        assert encryption.reveal(task.variables)["intake_notes"] == NOTES
        instance = ProcessInstance.objects.get(case_mapping__case=case)
        assert encryption.reveal(instance.variables)["intake_notes"] == NOTES
        assert TaskHistory.objects.filter(task=task, event_type="COMPLETED").get().comment == COMMENT
        report = key_rotation.rotate_encryption_keys()
        assert report.rows_changed == 0 and report.unreadable_count == 0


def test_the_engine_runs_on_after_rotation_without_the_old_key(data_under_the_old_key, caseworker_alice):
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        rotate()
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        task = WorkflowTask.objects.get(process_instance__case_mapping__case=data_under_the_old_key[0], status="OPEN")
        task_claim(user=caseworker_alice, task_id=task.pk)
        task_complete(user=caseworker_alice, task_id=task.pk, variables={"allegation_type": "FRAUD"})
        assert (
            WorkflowTask.objects.get(
                process_instance__case_mapping__case=data_under_the_old_key[0], status="OPEN"
            ).queue_id
            == "fraud-investigation"
        )


def test_dry_run_counts_what_would_change_and_writes_nothing(data_under_the_old_key):
    before = all_key_ids()
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        output = rotate("--dry-run")
        report = key_rotation.rotate_encryption_keys(dry_run=True)
    assert all_key_ids() == before
    assert report.values_changed["cases.Case.description"] == 3
    assert report.values_changed["cases.CaseSubject.email_hash"] == 3
    assert report.values_changed["tasks.TaskHistory.comment"] == 3
    assert "cases.Case.description: would re-encrypt 3" in output
    assert f"Rows to change: {report.rows_changed}." in output


def test_an_interrupted_rotation_carries_on_when_run_again(data_under_the_old_key, monkeypatch):
    real_write = key_rotation._write
    writes = []

    def write_then_stop(*args, **kwargs):
        if writes:
            raise KeyboardInterrupt  # stopped (Ctrl-C) in the middle of the run, after one batch was written
        writes.append(args[0].label)
        real_write(*args, **kwargs)

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        whole_run = key_rotation.rotate_encryption_keys(dry_run=True).rows_changed
        monkeypatch.setattr(key_rotation, "_write", write_then_stop)
        with pytest.raises(KeyboardInterrupt):
            rotate("--batch-size", "1")
        interrupted = all_key_ids()
        assert any("k-2026" in key_ids for key_ids in interrupted.values())  # the written batch was kept
        assert any("k-2025" in key_ids for key_ids in interrupted.values())
        monkeypatch.setattr(key_rotation, "_write", real_write)
        report = key_rotation.rotate_encryption_keys(batch_size=1)
    assert report.rows_changed == whole_run - 1
    assert all_key_ids() == {name: {"k-2026"} for name in all_key_ids()}


def test_a_value_under_a_missing_key_is_listed_and_left_alone(data_under_the_old_key):
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        with pytest.raises(CommandError, match="cannot be decrypted with the configured keys"):
            rotate()
        report = key_rotation.rotate_encryption_keys(dry_run=True)
    assert key_ids_in("onecms.cases", "description") == {"k-2025"}
    unreadable = {(cell.table, cell.field) for cell in report.unreadable}
    assert ("cases.Case", "description") in unreadable
    assert ("tasks.ProcessInstance", "engine_state") in unreadable
    assert any("which is not in the key set" in str(cell) for cell in report.unreadable)


def test_encrypt_plaintext_seals_what_was_written_before_encryption(data_under_the_old_key):
    task = WorkflowTask.objects.filter(process_instance__case_mapping__case=data_under_the_old_key[0]).earliest(
        "task_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO flowable.task_history (task_id, event_type, old_values, new_values, comment, created_at)"
            " VALUES (%s, 'COMMENTED', '{}', '{}', 'written in plaintext', now()) RETURNING event_id",
            [task.pk],
        )
        event_id = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE onecms.cases SET description = 'old plaintext' WHERE case_id = %s", [data_under_the_old_key[0].pk]
        )
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        assert TaskHistory.objects.get(pk=event_id).comment == "written in plaintext"  # read as it is
        rotate()
        with connection.cursor() as cursor:
            cursor.execute("SELECT comment FROM flowable.task_history WHERE event_id = %s", [event_id])
            assert cursor.fetchone()[0] == "written in plaintext"  # plain rotation leaves plaintext alone
        rotate("--encrypt-plaintext")
        with connection.cursor() as cursor:
            cursor.execute("SELECT comment FROM flowable.task_history WHERE event_id = %s", [event_id])
            assert encryption.sealed_key_id(cursor.fetchone()[0]) == "k-2026"
            cursor.execute("SELECT description FROM onecms.cases WHERE case_id = %s", [data_under_the_old_key[0].pk])
            assert encryption.sealed_key_id(cursor.fetchone()[0]) == "k-2026"
        assert Case.objects.get(pk=data_under_the_old_key[0].pk).description == "old plaintext"
        assert TaskHistory.objects.get(pk=event_id).comment == "written in plaintext"


def test_subject_hashes_follow_the_current_key(data_under_the_old_key):
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        assert case_subjects_matching(email="p0@example.org").count() == 1  # matched under the old key meanwhile
        rotate()
    assert {s.email_hash.split(":")[0] for s in CaseSubject.objects.all()} == {"k-2026"}
