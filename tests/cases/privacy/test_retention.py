"""apply_retention: closed cases past their type's retention period are redacted or deleted, live and archived."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from cases.integrity import integrity_check
from cases.models import Case, CaseEvent, CaseSubject, CaseTombstone, CaseWorkflowMapping, RetentionPolicy
from cases.privacy import retention
from tasks.models import ArchivedTask, ArchivedTaskHistory, ProcessInstance, TaskHistory, WorkflowTask

from .conftest import where_found

pytestmark = pytest.mark.django_db

LINE = re.compile(r"^(CASE-\d{4}-\d{6}) (REDACT|DELETE) under policy \d+", re.MULTILINE)
SUBJECTS = (("SUBJECT", "Zed Quill", "zed.quill@example.net"), ("WITNESS", "Yara Vance", "yara@example.net"))


def run(*args) -> str:
    out = io.StringIO()
    call_command("apply_retention", *args, stdout=out)
    return out.getvalue()


def listed(output: str) -> set[tuple[str, str]]:
    return set(LINE.findall(output))


def policy(case_type="onecms_case_handling", *, years=5, action="REDACT", enabled=True) -> RetentionPolicy:
    return RetentionPolicy.objects.create(
        case_type=case_type, keep_years_after_closure=years, action=action, enabled=enabled
    )


def counts_of(case: Case) -> dict:
    instances = list(CaseWorkflowMapping.objects.filter(case=case).values_list("process_instance_id", flat=True))
    live = WorkflowTask.objects.filter(process_instance_id__in=instances)
    archived = ArchivedTask.objects.filter(process_instance_id__in=instances)
    return {
        "instances": len(instances),
        "tasks": live.count(),
        "archived_tasks": archived.count(),
        "history": TaskHistory.objects.filter(task__in=live).count(),
        "archived_history": ArchivedTaskHistory.objects.filter(task_id__in=archived.values("task_id")).count(),
        "events": CaseEvent.objects.filter(case=case).count(),
        "hops": sum(len(m.routing_history) for m in CaseWorkflowMapping.objects.filter(case=case)),
        "subjects": CaseSubject.objects.filter(case=case).count(),
    }


@pytest.fixture
def mixed_cases(closed_case):
    """Cases of two types, some due and some not, live and archived."""
    cases = {
        "redact-live": closed_case("RTNREDACTLIVE", closed_years_ago=6),
        "redact-archived": closed_case("RTNREDACTARCH", closed_years_ago=7, archived=True),
        "recent": closed_case("RTNRECENT", closed_years_ago=2),
        "delete-live": closed_case("RTNDELETELIVE", closed_years_ago=4),
        "delete-archived": closed_case("RTNDELETEARCH", closed_years_ago=5, archived=True),
        "no-policy": closed_case("RTNNOPOLICY", closed_years_ago=20),
    }
    for key in ("delete-live", "delete-archived"):
        Case.objects.filter(pk=cases[key].pk).update(case_type="whistleblowing")
    Case.objects.filter(pk=cases["no-policy"].pk).update(case_type="unregulated")
    policy(years=5, action="REDACT")
    policy("whistleblowing", years=3, action="DELETE")
    policy("unregulated", years=1, action="DELETE", enabled=False)
    return cases


def test_dry_run_lists_exactly_what_the_real_run_then_does(mixed_cases):
    expected = {
        (mixed_cases["redact-live"].case_number, "REDACT"),
        (mixed_cases["redact-archived"].case_number, "REDACT"),
        (mixed_cases["delete-live"].case_number, "DELETE"),
        (mixed_cases["delete-archived"].case_number, "DELETE"),
    }

    dry = run("--dry-run")
    assert listed(dry) == expected and "Nothing changed" in dry
    assert Case.objects.filter(redacted_at__isnull=False).count() == 0 and not CaseTombstone.objects.exists()

    real = run("--batch-size", "3")
    assert listed(real) == listed(dry)
    assert "Redacted 2 and deleted 2 case(s) in 2 batch(es)." in real
    assert run("--dry-run").count("CASE-") == 0


def test_redaction_blanks_personal_and_free_text_in_live_and_archived_rows_and_keeps_the_skeleton(closed_case):
    live = closed_case("RTNLIVEMARK", subjects=SUBJECTS)
    archived = closed_case("RTNARCHMARK", archived=True, subjects=SUBJECTS)
    before = {case.pk: counts_of(case) for case in (live, archived)}
    assert before[archived.pk]["archived_tasks"] > 0 and before[archived.pk]["tasks"] == 0
    assert set(where_found("RTNLIVEMARK", "RTNARCHMARK")) >= {
        "onecms.cases.title",
        "flowable.task_history.new_values",
        "flowable.task_history_archive.new_values",
        "flowable.workflow_tasks_archive.variables",
        "flowable.process_instances.engine_state",
    }
    policy(years=5)

    retention.retention_apply()

    assert where_found("RTNLIVEMARK", "RTNARCHMARK", "Zed Quill", "zed.quill", "Yara Vance", "20 7946 0000") == {}
    for case in (live, archived):
        after = counts_of(case)
        assert after == {**before[case.pk], "events": before[case.pk]["events"] + 1}
        case.refresh_from_db()
        assert (case.status, case.title, case.description, case.redacted_at is not None) == (
            "CLOSED",
            "[redacted]",
            "",
            True,
        )
        assert case.allegations == [{"type": "MISCONDUCT", "description": "", "date": "2026-01-05"}]
        assert set(CaseSubject.objects.filter(case=case).values_list("role", "full_name", "email")) == {
            ("SUBJECT", "[redacted]", ""),
            ("WITNESS", "[redacted]", ""),
        }
        instance = ProcessInstance.objects.get(case_mapping__case=case)
        assert instance.variables["closure_reason"] == "ACTION_TAKEN" and instance.variables["findings"] == ""
        redacted = CaseEvent.objects.filter(case=case, event_type="REDACTED").get()
        assert redacted.new_values["policy_id"] and redacted.new_values["action"] == "REDACT"


def test_deletion_removes_the_case_and_its_live_and_archived_rows_and_leaves_a_tombstone(closed_case):
    live = closed_case("RTNDELLIVE", subjects=SUBJECTS)
    archived = closed_case("RTNDELARCH", archived=True)
    instance_ids = list(
        CaseWorkflowMapping.objects.filter(case__in=[live, archived]).values_list("process_instance_id", flat=True)
    )
    archived_task_ids = list(
        ArchivedTask.objects.filter(process_instance_id__in=instance_ids).values_list("pk", flat=True)
    )
    assert archived_task_ids
    policy(years=5, action="DELETE")

    retention.retention_apply()

    assert not Case.objects.filter(pk__in=[live.pk, archived.pk]).exists()
    assert not ProcessInstance.objects.filter(pk__in=instance_ids).exists()
    assert not WorkflowTask.objects.filter(process_instance_id__in=instance_ids).exists()
    assert not ArchivedTask.objects.filter(process_instance_id__in=instance_ids).exists()
    assert not ArchivedTaskHistory.objects.filter(task_id__in=archived_task_ids).exists()
    assert not CaseSubject.objects.filter(case_id=live.pk).exists()
    assert where_found("RTNDELLIVE", "RTNDELARCH", "Zed Quill") == {}
    tombstone = CaseTombstone.objects.get(case_number=archived.case_number)
    assert (tombstone.case_id, tombstone.status, tombstone.policy_terms["action"]) == (archived.pk, "CLOSED", "DELETE")
    assert tombstone.deleted_rows["workflow_tasks_archive"] == len(archived_task_ids)
    assert tombstone.deleted_rows["task_history_archive"] > 0


def test_check_integrity_passes_after_retention(mixed_cases):
    run()

    out = io.StringIO()
    call_command("check_integrity", stdout=out)
    assert "All invariants hold." in out.getvalue()


def test_check_integrity_finds_a_redacted_case_that_holds_text_again(closed_case):
    case = closed_case("RTNINTEGRITY")
    policy(years=5)
    retention.retention_apply()
    Case.objects.filter(pk=case.pk).update(description="restored from a backup")

    assert integrity_check().violations == [f"redacted case still holds free text: case {case.case_number}"]


def test_check_integrity_finds_archived_history_left_behind_by_a_deleted_task(archived_task):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM flowable.workflow_tasks_archive WHERE task_id = %s", [archived_task.pk])

    assert any(
        v.startswith("archived history event of a task that is not in the archive")
        for v in integrity_check().violations
    )


def test_a_run_stopped_after_its_first_batch_continues_where_it_stopped(closed_case):
    cases = [closed_case(f"RTNRESUME{n}") for n in range(5)]
    policy(years=5)
    due = [item.case_number for item in retention.retention_due()]

    def stop(items):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retention.retention_apply(batch_size=2, on_batch=stop)
    assert Case.objects.filter(redacted_at__isnull=False).count() == 2

    result = retention.retention_apply(batch_size=2)

    assert [item.case_number for item in result.applied] == due[2:]
    for case in cases:
        assert CaseEvent.objects.filter(case=case, event_type="REDACTED").count() == 1


def test_a_batch_that_fails_part_way_leaves_all_of_its_cases_untouched(closed_case, monkeypatch):
    cases = [closed_case(f"RTNHALF{n}") for n in range(4)]
    policy(years=5)
    redact = retention._case_redact
    seen = []

    def fail_on_the_fourth(item, *, now):
        seen.append(item.case_id)
        if len(seen) == 4:
            raise RuntimeError("disk full")
        redact(item, now=now)

    monkeypatch.setattr(retention, "_case_redact", fail_on_the_fourth)
    with pytest.raises(RuntimeError):
        retention.retention_apply(batch_size=2)

    done = set(Case.objects.filter(redacted_at__isnull=False).values_list("pk", flat=True))
    assert done == {cases[0].pk, cases[1].pk}  # the third was redacted in the failed batch, and rolled back with it
    third = Case.objects.get(pk=cases[2].pk)
    assert third.title == "RTNHALF2 title" and not CaseEvent.objects.filter(case=third, event_type="REDACTED").exists()
    monkeypatch.setattr(retention, "_case_redact", redact)
    assert [item.case_id for item in retention.retention_apply().applied] == [cases[2].pk, cases[3].pk]


def test_the_command_interrupted_says_so_in_one_line(closed_case, monkeypatch):
    closed_case("RTNCTRLC")
    policy(years=5)

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("cases.management.commands.apply_retention.retention_apply", interrupted)
    with pytest.raises(
        CommandError, match=r"^interrupted after 0 case\(s\); the batch in progress was rolled back"
    ) as error:
        run()
    assert error.value.returncode == 130


def test_a_closed_case_whose_workflow_still_runs_is_not_due(closed_case):
    case = closed_case("RTNRUNNING")
    ProcessInstance.objects.filter(case_mapping__case=case).update(status="RUNNING", ended_at=None)
    policy(years=5)

    assert retention.retention_due() == []


def test_a_case_closed_less_than_the_policy_years_ago_is_not_due(closed_case):
    case = closed_case("RTNYOUNG", closed_years_ago=4.9)
    policy(years=5)
    assert retention.retention_due() == []

    assert [item.case_id for item in retention.retention_due(now=timezone.now() + timedelta(days=60))] == [case.pk]


def test_a_redacted_case_is_deleted_when_its_policy_turns_to_delete(closed_case):
    case = closed_case("RTNTWICE")
    rule = policy(years=5)
    retention.retention_apply()
    assert retention.retention_due() == []

    RetentionPolicy.objects.filter(pk=rule.pk).update(action="DELETE")

    assert [(i.case_id, i.action) for i in retention.retention_apply().applied] == [(case.pk, "DELETE")]


@pytest.mark.parametrize("size", ["0", "lots"])
def test_a_bad_batch_size_is_one_line(size):
    with pytest.raises(CommandError, match="batch") as error:
        run("--batch-size", size)
    assert "\n" not in str(error.value)


def test_the_beat_job_applies_the_policies_and_reports_counts(closed_case):
    from cases.jobs import apply_retention

    closed_case("RTNJOB")
    policy(years=5, action="DELETE")

    assert apply_retention.run() == {"redacted": 0, "deleted": 1, "batches": 1, "left_locked": 0}


def test_beat_runs_retention_daily():
    from django_celery_beat.models import PeriodicTask

    from workflow_project.celery import app

    job = PeriodicTask.objects.get(name="Apply retention policies")
    app.loader.import_default_modules()
    assert job.task == "cases.apply_retention" and job.task in app.tasks and job.enabled
    assert (job.crontab.hour, job.crontab.day_of_week) == ("4", "*")


def test_case_type_is_the_process_key_the_case_was_opened_with(closed_case):
    assert closed_case("RTNTYPE", closed_years_ago=0).case_type == "onecms_case_handling"


def test_deletion_takes_the_reads_of_the_case_and_its_tasks_and_protects_its_policy(closed_case, caseworker_alice):
    from django.db.models import ProtectedError

    from entitlements.models import AccessAuditEntry, DetailReadChannel, DetailReadObject
    from entitlements.services import access_audit_record

    deleted = closed_case("RTNDELREAD")
    kept = closed_case("RTNKEEPREAD", closed_years_ago=1)
    instance_ids = list(CaseWorkflowMapping.objects.filter(case=deleted).values_list("process_instance_id", flat=True))
    task_ids = [
        *WorkflowTask.objects.filter(process_instance_id__in=instance_ids).values_list("pk", flat=True),
        *ArchivedTask.objects.filter(process_instance_id__in=instance_ids).values_list("pk", flat=True),
    ]
    assert task_ids
    for object_type, object_id in [
        (DetailReadObject.CASE, deleted.pk),
        (DetailReadObject.TASK, task_ids[0]),
        (DetailReadObject.CASE, kept.pk),
    ]:
        access_audit_record(
            object_type=object_type, object_id=object_id, channel=DetailReadChannel.API, reader=caseworker_alice
        )
    applied = policy(years=5, action="DELETE")

    retention.retention_apply()

    assert not Case.objects.filter(pk=deleted.pk).exists()
    assert list(AccessAuditEntry.objects.values_list("object_type", "object_id")) == [("case", kept.pk)]
    assert CaseTombstone.objects.get(case_id=deleted.pk).deleted_rows["access_audit"] == 2
    with pytest.raises(ProtectedError):
        applied.delete()
