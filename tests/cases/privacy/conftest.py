"""Closed cases worked through the demo workflow by the demo caseworkers, with free text that tests look for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from cases.demo import DEMO_BPMN, DEMO_PROCESS_KEY
from cases.models import Case, CaseSubject
from cases.services import case_open
from core import encryption
from entitlements.models import User
from tasks.bpmn.workflows import definition_deploy
from tasks.models import WorkflowDefinition, WorkflowTask
from tasks.services import task_claim, task_complete
from tasks.sla.archive import completed_tasks_archive

WORKER_BY_QUEUE = {"intake": "alice", "triage": "alice", "fraud-investigation": "bob", "legal-review": "carol"}
ARCHIVE_AFTER_DAYS = 30
SCANNED_TYPES = ("text", "character varying", "json", "jsonb", "ARRAY")
SCANNED_SCHEMAS = ("entitlements", "queues", "flowable", "onecms", "public")


def step_variables(task: WorkflowTask, marker: str) -> dict:
    """What a caseworker types at each step; every free-text field carries the case's marker."""
    return {
        "intake_review": {"received_on": "2026-10-02", "received_via": "EMAIL", "intake_notes": f"{marker} intake"},
        "triage": {
            "allegation_type": task.process_instance.variables["allegation_type"],
            "triage_notes": f"{marker} triage",
        },
        "fraud_investigation": {"recommend_action": True, "findings": f"{marker} findings", "estimated_loss": 1200},
        "misconduct_review": {"recommend_action": False, "findings": f"{marker} findings"},
        "legal_review": {"legal_opinion": f"{marker} opinion", "refer_to_prosecutor": False},
        "closure": {"closure_reason": "ACTION_TAKEN", "closure_summary": f"{marker} closed"},
    }[task.task_definition_key]


@pytest.fixture
def demo_workflow(supervisor_sam) -> WorkflowDefinition:
    existing = WorkflowDefinition.objects.filter(process_key=DEMO_PROCESS_KEY).order_by("-version").first()
    return existing or definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text(encoding="utf-8"))


def work_to_end(case: Case, marker: str, *, comment: str = "") -> None:
    people = {u.username: u for u in User.objects.filter(username__in=WORKER_BY_QUEUE.values())}
    while True:
        task = (
            WorkflowTask.objects.filter(process_instance__case_mapping__case=case, status="OPEN")
            .select_related("process_instance")
            .order_by("task_id")
            .first()
        )
        if task is None:
            return
        worker = people[WORKER_BY_QUEUE[task.queue_id]]
        task_claim(user=worker, task_id=task.pk)
        task_complete(
            user=worker, task_id=task.pk, variables=step_variables(task, marker), comment=comment or f"{marker} comment"
        )


@pytest.fixture
def closed_case(demo_workflow, caseworker_alice):
    """A case opened by alice and worked to its end; closed `closed_years_ago`, its tasks archived if asked."""

    def make(
        marker: str,
        *,
        allegation: str = "MISCONDUCT",
        closed_years_ago: float = 10,
        archived: bool = False,
        subjects: tuple = (),
        opened_by=None,
    ) -> Case:
        with transaction.atomic():
            case = case_open(
                user=opened_by or caseworker_alice,
                title=f"{marker} title",
                description=f"{marker} description",
                allegations=[{"type": allegation, "description": f"{marker} allegation", "date": "2026-01-05"}],
            )
            for role, full_name, email in subjects:
                CaseSubject.objects.create(
                    case=case,
                    role=role,
                    full_name=full_name,
                    email=email,
                    phone="+44 20 7946 0000",
                    notes=f"{marker} notes on {full_name}",
                )
        work_to_end(case, marker)
        case.refresh_from_db()
        assert case.status == "CLOSED", f"{marker}: the workflow did not end"
        closed_at = timezone.now() - timedelta(days=365.25 * closed_years_ago)
        Case.objects.filter(pk=case.pk).update(closed_at=closed_at)
        if archived:
            WorkflowTask.objects.filter(process_instance__case_mapping__case=case).update(
                completed_at=closed_at - timedelta(hours=1)
            )
            completed_tasks_archive(older_than_days=ARCHIVE_AFTER_DAYS)
            assert not WorkflowTask.objects.filter(process_instance__case_mapping__case=case).exists()
        case.refresh_from_db()
        return case

    return make


def text_columns(*, partitions: bool = True) -> list[tuple[str, str, str]]:
    """Every text, varchar, json, jsonb and array column of every table in our schemas and public (with the
    archive's month partitions, or only their parents)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.table_schema, c.table_name, c.column_name
                 FROM information_schema.columns c
                 JOIN information_schema.tables t USING (table_schema, table_name)
                WHERE t.table_type = 'BASE TABLE' AND c.table_schema = ANY(%s) AND c.data_type = ANY(%s)
                  AND (%s OR NOT (SELECT relispartition FROM pg_class
                                   WHERE oid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass))
                ORDER BY 1, 2, 3""",
            [list(SCANNED_SCHEMAS), list(SCANNED_TYPES), partitions],
        )
        return cursor.fetchall()


def _opened(text: str) -> str:
    """The text with every sealed value in it (a whole column's, or strings inside JSON) replaced by its plaintext."""
    return encryption.SEALED_PATTERN.sub(lambda match: encryption.open_sealed(match.group(0)), text)


def where_found(*needles: str) -> dict[str, int]:
    """Each column holding any of the strings anywhere (case-insensitively), with how many rows hold it; sealed
    values (core/encryption.py) are opened and searched too."""
    lowered = [needle.casefold() for needle in needles]
    found = {}
    with connection.cursor() as cursor:
        for schema, table, column in text_columns():
            cursor.execute(
                f'SELECT "{column}"::text FROM "{schema}"."{table}" WHERE "{column}"::text ILIKE ANY(%s)',
                [[*(f"%{needle}%" for needle in needles), "%" + encryption.PREFIX + "%"]],
            )
            count = sum(
                1 for (text,) in cursor.fetchall() if any(needle in _opened(text).casefold() for needle in lowered)
            )
            if count:
                found[f"{schema}.{table}.{column}"] = count
    return found


def scalar(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]
