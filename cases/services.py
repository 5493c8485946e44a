"""Writes of cases: open a case (and its workflow), and keep its routing history as its work moves."""

from __future__ import annotations

import datetime as dt
import json

from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core.encrypted_fields import seal_keys
from core.errors import InvalidInput
from entitlements.row_scope import acting_for_user
from tasks.bpmn.workflows import process_start

from .locks import case_mappings_for_update
from .models import AllegationType, Case, CaseEvent, CaseStatus, CaseSubject, CaseWorkflowMapping, SubjectRole
from .selectors import case_for_user

CASE_NUMBER_FORMAT = "CASE-{year}-{number:06d}"
MAX_ALLEGATIONS = 50
MAX_TITLE = 300
MAX_SUBJECTS = 50
MAX_SUBJECT_TEXT = {"full_name": 300, "email": 254, "phone": 50, "notes": 20_000}
HOP_SEALED_KEYS = CaseWorkflowMapping._meta.get_field("routing_history").encrypted_keys


def validate_allegations(allegations) -> list[dict]:
    """A list of {type, description, date}; type from AllegationType, date ISO (not in the future)."""
    if not isinstance(allegations, list) or not allegations:
        raise InvalidInput(
            "at least one allegation is required", fields={"allegations": ["Give at least one allegation."]}
        )
    if len(allegations) > MAX_ALLEGATIONS:
        raise InvalidInput("too many allegations", fields={"allegations": [f"At most {MAX_ALLEGATIONS}."]})
    cleaned, errors = [], {}
    for index, item in enumerate(allegations):
        key = f"allegations[{index}]"
        if not isinstance(item, dict):
            errors[key] = ["Must be an object with type, description and date."]
            continue
        kind = item.get("type")
        if kind not in AllegationType.values:
            errors[f"{key}.type"] = [f"Must be one of: {', '.join(AllegationType.values)}."]
        description = item.get("description", "")
        if not isinstance(description, str) or not description.strip():
            errors[f"{key}.description"] = ["This field is required."]
        date = item.get("date")
        parsed = None
        if date is not None:
            try:
                parsed = dt.date.fromisoformat(str(date))
                if parsed > timezone.localdate():
                    errors[f"{key}.date"] = ["Must not be in the future."]
            except ValueError:
                errors[f"{key}.date"] = ["Must be a date (YYYY-MM-DD)."]
        cleaned.append(
            {
                "type": kind,
                "description": description.strip() if isinstance(description, str) else "",
                "date": parsed.isoformat() if parsed else None,
            }
        )
    if errors:
        first = next(iter(errors))
        raise InvalidInput(f"{first}: {errors[first][0]}", fields=errors)
    return cleaned


def validate_subjects(subjects) -> list[dict]:
    """A list of {role, full_name, email?, phone?, date_of_birth?, notes?}; InvalidInput naming each bad field."""
    if not isinstance(subjects, list):
        raise InvalidInput("subjects must be a list", fields={"subjects": ["Must be a list."]})
    if len(subjects) > MAX_SUBJECTS:
        raise InvalidInput("too many subjects", fields={"subjects": [f"At most {MAX_SUBJECTS}."]})
    cleaned, errors = [], {}
    for index, item in enumerate(subjects):
        key = f"subjects[{index}]"
        if not isinstance(item, dict):
            errors[key] = ["Must be an object with role and full_name."]
            continue
        unknown = sorted(set(item) - {"role", *MAX_SUBJECT_TEXT, "date_of_birth"})
        if unknown:
            errors[f"{key}.{unknown[0]}"] = ["Unknown field."]
        if item.get("role") not in SubjectRole.values:
            errors[f"{key}.role"] = [f"Must be one of: {', '.join(SubjectRole.values)}."]
        person = {"role": item.get("role")}
        for name, limit in MAX_SUBJECT_TEXT.items():
            value = item.get(name) or ""
            if not isinstance(value, str) or "\x00" in value:
                errors[f"{key}.{name}"] = ["Must be text."]
            elif len(value.strip()) > limit:
                errors[f"{key}.{name}"] = [f"At most {limit} characters."]
            else:
                person[name] = value.strip()
        if not person.get("full_name") and f"{key}.full_name" not in errors:
            errors[f"{key}.full_name"] = ["This field is required."]
        if person.get("email") and "@" not in person["email"]:
            errors[f"{key}.email"] = ["Must be an email address."]
        person["date_of_birth"] = None
        if item.get("date_of_birth"):
            try:
                person["date_of_birth"] = dt.date.fromisoformat(str(item["date_of_birth"]))
            except ValueError:
                errors[f"{key}.date_of_birth"] = ["Must be a date (YYYY-MM-DD)."]
        cleaned.append(person)
    if errors:
        first = next(iter(errors))
        raise InvalidInput(f"{first}: {errors[first][0]}", fields=errors)
    return cleaned


def _subject_create(*, case: Case, user, role, full_name, email="", phone="", date_of_birth=None, notes=""):
    subject = CaseSubject.objects.create(
        case=case,
        role=role,
        full_name=full_name,
        email=email,
        phone=phone,
        date_of_birth=date_of_birth,
        notes=notes,
    )
    # Which person, never what about them: the event outlives an erasure of the subject.
    CaseEvent.objects.create(
        case=case, event_type="SUBJECT_ADDED", actor=user, new_values={"subject_id": subject.pk, "role": role}
    )
    return subject


@transaction.atomic
@acting_for_user
def case_subject_add(*, user, case_id: int, subject: dict) -> CaseSubject:
    """Add a person to a case the user may see (cases/selectors.py: case_for_user); the personal fields are
    stored sealed, with keyed hashes of the email and the normalised name for exact lookups."""
    case = case_for_user(user=user, case_id=case_id)
    (person,) = validate_subjects([subject])
    return _subject_create(case=case, user=user, **person)


def next_case_number() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('onecms.case_number_seq')")
        number = cursor.fetchone()[0]
    return CASE_NUMBER_FORMAT.format(year=timezone.now().year, number=number)


@transaction.atomic
@acting_for_user
def case_open(
    *,
    user,
    title: str,
    allegations,
    workflow_type: str = "onecms_case_handling",
    description: str = "",
    priority: int = 50,
    via_account=None,
    subjects=None,
) -> Case:
    """Open a case and start its workflow with the case's data as variables; record the mapping.

    `subjects` (optional) is a list of {role, full_name, email, phone, date_of_birth, notes}, see case_subject_add.
    """
    if not isinstance(title, str) or not title.strip():
        raise InvalidInput("title is required", fields={"title": ["This field is required."]})
    if len(title) > MAX_TITLE:
        raise InvalidInput("title is too long", fields={"title": [f"At most {MAX_TITLE} characters."]})
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
        raise InvalidInput("priority must be 0-100", fields={"priority": ["Must be a whole number from 0 to 100."]})
    cleaned = validate_allegations(allegations)
    people = validate_subjects(subjects or [])
    case = Case.objects.create(
        case_number=next_case_number(),
        case_type=workflow_type,
        title=title.strip(),
        description=description,
        allegations=cleaned,
        priority=priority,
        created_by=user,
        status=CaseStatus.OPEN,
    )
    CaseEvent.objects.create(
        case=case,
        event_type="OPENED",
        actor=user,
        # The events are append-only and kept after erasure: they name the allegations' types and dates, never
        # their sealed descriptions.
        new_values={"title": case.title, "allegations": [{"type": a["type"], "date": a["date"]} for a in cleaned]},
    )
    for person in people:
        _subject_create(case=case, user=user, **person)
    variables = {
        "case_number": case.case_number,
        "title": case.title,
        "allegation_type": cleaned[0]["type"],
        "allegation_types": sorted({a["type"] for a in cleaned}),
        "priority": priority,
    }
    instance = process_start(
        user=user,
        process_key=workflow_type,
        business_key=case.case_number,
        variables=variables,
        via_account=via_account,
        sealed={"title"},  # sealed as on the case; pages and the API show process variables opened
    )
    CaseWorkflowMapping.objects.create(case=case, process_instance=instance, workflow_type=workflow_type)
    # The first tasks were created before the mapping existed: record their arrival now.
    for task in instance.tasks.order_by("task_id"):
        _append_hop(instance.pk, from_queue=None, to_queue=task.queue_id, user=user, reason=f"opened: {task.name}")
    return case


# The last hop's queue, without opening (or reading) every hop's reason.
_LAST_HOP_QUEUE = RawSQL("routing_history -> -1 ->> 'to_queue'", ())
_FROM_LAST_HOP = object()


def _append_hop(process_instance_id: int, *, from_queue, to_queue, user, reason: str) -> None:
    """One hop appended in SQL with its reason sealed: the hops there keep their bytes (append-only trigger) and are
    neither read nor opened. `from_queue` _FROM_LAST_HOP: the queue of the last hop, read as the mapping is locked."""
    mapping = (
        case_mappings_for_update()
        .filter(process_instance_id=process_instance_id)
        .defer("routing_history")
        .annotate(last_queue=_LAST_HOP_QUEUE)
        .first()
    )
    if mapping is None:
        return
    if from_queue is _FROM_LAST_HOP:
        from_queue = mapping.last_queue
    hop = {
        "from_queue": from_queue,
        "to_queue": to_queue,
        "at": timezone.now().isoformat(),
        "by": user.get_username() if user is not None else "system",
        "reason": reason,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE onecms.case_workflow_mapping SET routing_history = routing_history || %s::jsonb "
            "WHERE mapping_id = %s",
            [json.dumps(seal_keys([hop], HOP_SEALED_KEYS)), mapping.pk],
        )
    if from_queue is not None:  # work has moved on from its first queue: an open case is in progress
        Case.objects.filter(pk=mapping.case_id, status=CaseStatus.OPEN).update(status=CaseStatus.IN_PROGRESS)


def record_task_moved(*, task, from_queue, to_queue, user, reason="", **signal) -> None:
    """Receives tasks.signals.task_moved: a hop in the routing history of the task's case."""
    if task.process_instance_id:
        _append_hop(
            task.process_instance_id, from_queue=from_queue, to_queue=to_queue, user=user, reason=reason or "moved"
        )


def record_task_opened(*, instance, task, user, **signal) -> None:
    """Receives tasks.signals.process_task_opened: a hop from the queue where the case's work last was."""
    _append_hop(
        instance.pk, from_queue=_FROM_LAST_HOP, to_queue=task.queue_id, user=user, reason=f"next step: {task.name}"
    )


def record_process_completed(*, instance, **signal) -> None:
    """Receives tasks.signals.process_completed: the case of a finished workflow is closed."""
    mapping = CaseWorkflowMapping.objects.filter(process_instance=instance).select_related("case").first()
    if mapping and mapping.case.status != CaseStatus.CLOSED:
        Case.objects.filter(pk=mapping.case_id).update(status=CaseStatus.CLOSED, closed_at=timezone.now())
        CaseEvent.objects.create(case=mapping.case, event_type="CLOSED", new_values={"status": "CLOSED"})


def record_tasks_moved_in_bulk(*, moves: list[dict], reason: str, at, **signal) -> None:
    """Receives tasks.signals.tasks_moved_in_bulk: append one hop per moved task to its case's routing history, in one statement."""
    rows = [m for m in moves if m.get("process_instance_id")]
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE onecms.case_workflow_mapping m
               SET routing_history = m.routing_history || hops.entries
              FROM (
                    SELECT (h->>'process_instance_id')::bigint AS process_instance_id,
                           jsonb_agg(jsonb_build_object('from_queue', h->>'from_queue', 'to_queue', h->>'to_queue',
                                                        'at', %s, 'by', 'system', 'reason', %s)) AS entries
                      FROM jsonb_array_elements(%s::jsonb) AS h
                     GROUP BY 1
                   ) hops
             WHERE m.process_instance_id = hops.process_instance_id
            """,
            [at.isoformat(), seal_keys({"reason": reason}, HOP_SEALED_KEYS)["reason"], json.dumps(rows)],
        )
