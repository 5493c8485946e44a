"""Retention: closed cases past their type's retention period are redacted or deleted, live and archived rows alike.

A policy (cases.RetentionPolicy, edited in admin) says, for one case type (the process key a case was opened with),
how many whole years after closure its cases are kept and what then happens to them:
- REDACT: the case's personal data and free text are replaced (title, description, allegations' descriptions,
  subjects' personal fields, process variables the forms fill with free text or mark personal, task comments,
  routing reasons), in the live tables and the archive; structure, dates, statuses and counts stay, and a REDACTED
  case event records the policy applied. The case's redacted_at is set, so it is never redacted twice.
- DELETE: the case goes with its subjects, events, mappings, process instances, incidents, tasks and task history,
  live and archived; a tombstone (cases.CaseTombstone: number, type, dates, row counts, no personal data) stays.

Which cases are due is one query (DUE_SQL) with the run's `now` fixed at its start: the dry run lists its rows, the
real run walks the same rows in batches, so a real run right after a dry run applies exactly what it listed.

Batches go as archival's do (tasks/sla/archive.py): each is one transaction that locks its cases in key order with
`FOR UPDATE SKIP LOCKED` (a case another transaction holds is passed over, not waited on, and counted in
left_locked) and applies every case completely or, if anything fails, none of them. A case done is no longer due
(redacted_at set, or the case gone), so an interrupted run loses at most its open batch, and the next run continues
with whatever is still due; nothing is done twice.

Within a case the lock order of tasks/locks.py holds: its process instances, then its live tasks (before the
archive rows are touched, so archival, which passes over locked tasks, cannot move a task between the two), then
its routing history.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from core.db_roles import maintenance_role
from core.errors import InvalidInput
from tasks.locks import process_instances_for_update, tasks_for_update
from tasks.models import ArchivedTask, ArchivedTaskHistory, ProcessIncident, ProcessInstance, TaskHistory, WorkflowTask

from ..locks import case_mappings_for_update
from ..models import Case, CaseEvent, CaseSubject, CaseTombstone, CaseWorkflowMapping, RetentionAction
from .redaction import (
    REDACTED_TEXT,
    REDACTED_TITLE,
    personal_variable_names,
    redact_allegations,
    redact_case_values,
    redact_engine_state,
    redact_history_values,
    redact_routing_history,
    redact_variables,
)

DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 10_000
REDACTED_EVENT = "REDACTED"
# A case whose workflow still runs is not due, whatever its status says: its tasks could still move.
ACTIVE_PROCESS_STATUSES = ("RUNNING", "SUSPENDED")

DUE_SQL = """
SELECT c.case_id, c.case_number, c.case_type, p.policy_id, p.action, p.keep_years_after_closure
  FROM onecms.cases c
  JOIN onecms.retention_policies p ON p.case_type = c.case_type AND p.enabled
 WHERE c.status = 'CLOSED'
   AND c.closed_at < %(now)s - make_interval(years => p.keep_years_after_closure)
   AND (p.action = 'DELETE' OR c.redacted_at IS NULL)
   AND NOT EXISTS (
        SELECT 1 FROM onecms.case_workflow_mapping m
          JOIN flowable.process_instances i ON i.process_instance_id = m.process_instance_id
         WHERE m.case_id = c.case_id AND i.status = ANY(%(active)s))
   AND c.case_id > %(after)s
 ORDER BY c.case_id
"""
LOCK_BATCH_SQL = DUE_SQL + " LIMIT %(limit)s FOR UPDATE OF c SKIP LOCKED"

DELETE_CASE_SQL = [
    # (table, statement); children before parents, archive before live (no foreign keys guard the archive).
    # Who read the case and its tasks (entitlements.access_audit) goes with them: the reads name the case.
    (
        "access_audit",
        """DELETE FROM entitlements.access_audit
            WHERE (object_type = 'case' AND object_id = %(case)s)
               OR (object_type = 'task' AND object_id IN (
                      SELECT task_id FROM flowable.workflow_tasks WHERE process_instance_id = ANY(%(instances)s)
                      UNION ALL
                      SELECT task_id FROM flowable.workflow_tasks_archive
                       WHERE process_instance_id = ANY(%(instances)s)))""",
    ),
    (
        "task_history_archive",
        """DELETE FROM flowable.task_history_archive WHERE task_id IN (
               SELECT task_id FROM flowable.workflow_tasks_archive WHERE process_instance_id = ANY(%(instances)s))""",
    ),
    (
        "workflow_tasks_archive",
        "DELETE FROM flowable.workflow_tasks_archive WHERE process_instance_id = ANY(%(instances)s)",
    ),
    (
        "task_history",
        """DELETE FROM flowable.task_history WHERE task_id IN (
               SELECT task_id FROM flowable.workflow_tasks WHERE process_instance_id = ANY(%(instances)s))""",
    ),
    ("workflow_tasks", "DELETE FROM flowable.workflow_tasks WHERE process_instance_id = ANY(%(instances)s)"),
    ("process_incidents", "DELETE FROM flowable.process_incidents WHERE process_instance_id = ANY(%(instances)s)"),
    ("case_workflow_mapping", "DELETE FROM onecms.case_workflow_mapping WHERE case_id = %(case)s"),
    ("process_instances", "DELETE FROM flowable.process_instances WHERE process_instance_id = ANY(%(instances)s)"),
    ("case_events", "DELETE FROM onecms.case_events WHERE case_id = %(case)s"),
    ("case_subjects", "DELETE FROM onecms.case_subjects WHERE case_id = %(case)s"),
    ("cases", "DELETE FROM onecms.cases WHERE case_id = %(case)s"),
]


@dataclass(frozen=True)
class RetentionItem:
    """One case due under one policy, and what is done to it."""

    case_id: int
    case_number: str
    case_type: str
    policy_id: int
    action: str
    keep_years_after_closure: int

    def describe(self) -> str:
        return (
            f"{self.case_number} {self.action} under policy {self.policy_id} "
            f"({self.case_type}: {self.keep_years_after_closure} years after closure)"
        )

    def policy_terms(self) -> dict:
        return {
            "policy_id": self.policy_id,
            "case_type": self.case_type,
            "keep_years_after_closure": self.keep_years_after_closure,
            "action": self.action,
        }


@dataclass
class RetentionResult:
    now: datetime
    applied: list[RetentionItem] = field(default_factory=list)
    batches: int = 0
    # Cases due at the end of the run that another transaction held when their turn came; the next run takes them.
    left_locked: int = 0

    def count(self, action: str) -> int:
        return sum(1 for item in self.applied if item.action == action)


def _items(rows) -> list[RetentionItem]:
    return [RetentionItem(*row) for row in rows]


def retention_due(*, now: datetime | None = None) -> list[RetentionItem]:
    """The cases a run at `now` would redact or delete, in the order it would (the dry run). Changes nothing."""
    with connection.cursor() as cursor:
        cursor.execute(DUE_SQL, {"now": now or timezone.now(), "active": list(ACTIVE_PROCESS_STATUSES), "after": 0})
        return _items(cursor.fetchall())


def retention_apply(
    *,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[list[RetentionItem]], None] | None = None,
) -> RetentionResult:
    """Redact or delete every case due at `now` (default: the start of the run), a batch per transaction.

    `on_batch(items)` is called after each batch commits. Safe to interrupt and to run again; two runs at once take
    different cases.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(
            f"batch size must be between 1 and {MAX_BATCH_SIZE} (got {batch_size!r})",
            code="retention_batch_size_invalid",
            fields={"batch_size": [f"Between 1 and {MAX_BATCH_SIZE}."]},
        )
    result = RetentionResult(now=now or timezone.now())
    params = {"now": result.now, "active": list(ACTIVE_PROCESS_STATUSES), "limit": batch_size}
    after = 0
    while True:
        # History (task and case events, routing hops, the access audit) is rewritten: the maintenance role's.
        with transaction.atomic(durable=True), maintenance_role():
            with connection.cursor() as cursor:
                cursor.execute(LOCK_BATCH_SQL, {**params, "after": after})
                batch = _items(cursor.fetchall())
            if not batch:
                break
            for item in batch:
                if item.action == RetentionAction.DELETE:
                    _case_delete(item, now=result.now)
                else:
                    _case_redact(item, now=result.now)
        after = batch[-1].case_id
        result.applied += batch
        result.batches += 1
        if on_batch is not None:
            on_batch(batch)
    result.left_locked = len(retention_due(now=result.now))
    return result


# --- one case -------------------------------------------------------------------------------------------------


def _instances_locked(case_id: int) -> list[int]:
    """The case's process instances, then their live tasks, locked in the order of tasks/locks.py."""
    mapped = CaseWorkflowMapping.objects.filter(case_id=case_id).values("process_instance_id")
    instance_ids = list(
        process_instances_for_update(ProcessInstance.objects.filter(pk__in=mapped)).values_list("pk", flat=True)
    )
    list(
        tasks_for_update(WorkflowTask.objects.filter(process_instance_id__in=instance_ids)).values_list("pk", flat=True)
    )
    return instance_ids


def _case_redact(item: RetentionItem, *, now: datetime) -> None:
    instance_ids = _instances_locked(item.case_id)
    live_tasks = list(WorkflowTask.objects.filter(process_instance_id__in=instance_ids).order_by("pk"))
    archived_tasks = list(ArchivedTask.objects.filter(process_instance_id__in=instance_ids).order_by("pk"))
    names = personal_variable_names(task.form_fields for task in [*live_tasks, *archived_tasks])
    rows = {
        "workflow_tasks": _redact_task_variables(WorkflowTask, live_tasks, names),
        "workflow_tasks_archive": _redact_task_variables(ArchivedTask, archived_tasks, names),
        "task_history": _redact_history(TaskHistory, [t.pk for t in live_tasks], names),
        "task_history_archive": _redact_history(ArchivedTaskHistory, [t.pk for t in archived_tasks], names),
        "process_instances": _redact_instances(instance_ids, names),
        "process_incidents": ProcessIncident.objects.filter(process_instance_id__in=instance_ids)
        .exclude(message=REDACTED_TITLE)
        .update(message=REDACTED_TITLE),
    }
    mappings = []
    for mapping in case_mappings_for_update().filter(case_id=item.case_id):
        hops = redact_routing_history(mapping.routing_history)
        if hops != mapping.routing_history:
            mapping.routing_history = hops
            mappings.append(mapping)
    rows["case_workflow_mapping"] = _bulk_update(mappings, ["routing_history"])
    case = Case.objects.get(pk=item.case_id)
    Case.objects.filter(pk=case.pk).update(
        title=REDACTED_TITLE,
        description=REDACTED_TEXT,
        allegations=redact_allegations(case.allegations),
        redacted_at=now,
    )
    rows["cases"] = 1
    events = []
    for event in CaseEvent.objects.filter(case_id=case.pk).order_by("pk"):
        old, new = redact_case_values(event.old_values), redact_case_values(event.new_values)
        if (old, new) != (event.old_values, event.new_values):
            event.old_values, event.new_values = old, new
            events.append(event)
    rows["case_events"] = _bulk_update(events, ["old_values", "new_values"])
    rows["case_subjects"] = CaseSubject.objects.filter(case_id=case.pk).update(
        full_name=REDACTED_TITLE,
        email="",
        phone="",
        date_of_birth=None,
        notes="",
        # update() runs no pre_save: the keyed hashes follow the fields here.
        email_hash="",
        name_hash=CaseSubject._meta.get_field("name_hash").hash_of(REDACTED_TITLE),
    )
    CaseEvent.objects.create(
        case=case,
        event_type=REDACTED_EVENT,
        created_at=now,
        new_values={**item.policy_terms(), "rows": {table: count for table, count in rows.items() if count}},
    )


def _bulk_update(objects: list, fields: list[str]) -> int:
    if objects:
        objects[0].__class__.objects.bulk_update(objects, fields, batch_size=500)
    return len(objects)


def _redact_task_variables(model, tasks: list, names: set[str]) -> int:
    changed = []
    for task in tasks:
        redacted = redact_variables(task.variables, names)
        if redacted != task.variables:
            task.variables = redacted
            changed.append(task)
    return _bulk_update(changed, ["variables"]) if model is WorkflowTask else _archive_update(model, changed)


def _redact_history(model, task_ids: list[int], names: set[str]) -> int:
    changed = []
    for event in model.objects.filter(task_id__in=task_ids).order_by("pk"):
        old, new = redact_history_values(event.old_values, names), redact_history_values(event.new_values, names)
        if old != event.old_values or new != event.new_values or event.comment:
            event.old_values, event.new_values, event.comment = old, new, REDACTED_TEXT
            changed.append(event)
    if model is TaskHistory:
        return _bulk_update(changed, ["old_values", "new_values", "comment"])
    return _archive_update(model, changed)


def _archive_update(model, rows: list) -> int:
    """Archive rows rewritten in place (the archive tables are read through unmanaged models; plain SQL writes)."""
    if not rows:
        return 0
    table = model._meta.db_table.replace('"', "")
    if model is ArchivedTask:
        sql = f"UPDATE {table} SET variables = %s::jsonb WHERE task_id = %s"
        params = [(json.dumps(row.variables), row.pk) for row in rows]
    else:
        sql = f"UPDATE {table} SET old_values = %s::jsonb, new_values = %s::jsonb, comment = %s WHERE event_id = %s"
        params = [(json.dumps(r.old_values), json.dumps(r.new_values), r.comment, r.pk) for r in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    return len(rows)


def _redact_instances(instance_ids: list[int], names: set[str]) -> int:
    count = 0
    for instance in ProcessInstance.objects.filter(pk__in=instance_ids).order_by("pk"):
        variables = redact_variables(instance.variables, names)
        state = redact_engine_state(instance.engine_state, names)
        if variables != instance.variables or state != instance.engine_state:
            ProcessInstance.objects.filter(pk=instance.pk).update(variables=variables, engine_state=state)
            count += 1
    return count


def _case_delete(item: RetentionItem, *, now: datetime) -> None:
    instance_ids = _instances_locked(item.case_id)
    case = Case.objects.get(pk=item.case_id)
    rows = {}
    with connection.cursor() as cursor:
        for table, sql in DELETE_CASE_SQL:
            cursor.execute(sql, {"instances": instance_ids, "case": case.pk})
            rows[table] = cursor.rowcount
    CaseTombstone.objects.create(
        case_id=case.pk,
        case_number=case.case_number,
        case_type=case.case_type,
        status=case.status,
        opened_at=case.created_at,
        closed_at=case.closed_at,
        deleted_at=now,
        policy_id=item.policy_id,
        policy_terms=item.policy_terms(),
        deleted_rows={table: count for table, count in rows.items() if count},
    )
