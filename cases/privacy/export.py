"""Right of access: everything held about one person (a user, or a case subject by email), as one JSON document.

A user: their user record without secrets (no password hash, no token digests), role assignments, API tokens
(name, dates, scope), the tasks assigned to or delegated by them and the task history they acted in (live and
archived), the cases assigned to or opened by them, the case events and routing hops they caused, and the security
events about them. A case subject: each subject row with that email address and the case it belongs to.

Reading is the export; the one write is its record in the security audit (PERSONAL_DATA_EXPORTED: who exported
whom, when, how many rows of each kind), without the exported data.
"""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Cast
from django.utils import timezone

from core.encryption import reveal
from core.errors import InvalidInput, NotFound
from entitlements.models import AccessAuditEntry, ApiToken, SecurityEvent, User, UserRoleAssignment
from entitlements.services import security_event_record
from tasks.models import ArchivedTask, ArchivedTaskHistory, TaskHistory, WorkflowTask

from ..models import Case, CaseEvent, CaseWorkflowMapping
from ..selectors import case_subjects_matching

EXPORT_FORMAT = "onecms-person-export/1"
USER_FIELDS = (
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "department__dept_code",
    "is_active",
    "is_staff",
    "is_superuser",
    "is_service_account",
    "max_concurrent_tasks",
    "date_joined",
    "last_login",
)
TASK_FIELDS = (
    "task_id",
    "process_instance_id",
    "name",
    "queue_id",
    "status",
    "priority",
    "assignee__username",
    "owner__username",
    "variables",
    "created_at",
    "claimed_at",
    "completed_at",
)
HISTORY_FIELDS = (
    "event_id",
    "task_id",
    "event_type",
    "actor__username",
    "via_account__username",
    "old_values",
    "new_values",
    "comment",
    "created_at",
)
CASE_FIELDS = (
    "case_id",
    "case_number",
    "case_type",
    "title",
    "description",
    "allegations",
    "status",
    "priority",
    "assigned_to__username",
    "created_by__username",
    "created_at",
    "closed_at",
)


@transaction.atomic
def person_export(*, username: str | None = None, subject_email: str | None = None, exported_by=None) -> dict:
    """The document for one person; give exactly one of `username` and `subject_email`."""
    if bool(username) == bool(subject_email):
        raise InvalidInput("give a username or a subject's email address, not both", code="export_person_invalid")
    if username:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise NotFound(f"no user {username!r}", code="user_not_found")
        document = _user_document(user)
        audit = {"kind": "user", "user_id": user.pk}
    else:
        subjects = list(case_subjects_matching(email=subject_email).order_by("subject_id").select_related("case"))
        if not subjects:
            raise NotFound(f"no case subject with email {subject_email!r}", code="subject_not_found")
        document = _subject_document(subjects)
        audit = {"kind": "case_subject", "subject_ids": [s.pk for s in subjects]}
    document = {"format": EXPORT_FORMAT, "exported_at": timezone.now(), **document}
    counts = {key: len(value) for key, value in document.items() if isinstance(value, list)}
    security_event_record(
        event_type=SecurityEvent.Type.PERSONAL_DATA_EXPORTED,
        actor=exported_by,
        actor_username="" if exported_by is not None else "system",
        details={**audit, "rows": counts},
    )
    return document


def _user_document(user: User) -> dict:
    username = user.get_username()
    record = User.objects.filter(pk=user.pk).values(*USER_FIELDS).get()
    record["skills"] = sorted(user.skills.values_list("skill_code", flat=True))
    record["groups"] = sorted(user.groups.values_list("name", flat=True))
    by_user = Q(actor=user) | Q(via_account=user)
    hops = []
    # The hops' reasons are sealed, so the field refuses containment; the raw jsonb is asked about the clear "by".
    stored_hops = Cast("routing_history", models.JSONField())
    for mapping in (
        CaseWorkflowMapping.objects.alias(stored_hops=stored_hops)
        .filter(stored_hops__contains=[{"by": username}])
        .values("case__case_number", "workflow_type", "routing_history")
    ):
        hops += [
            {"case_number": mapping["case__case_number"], "workflow_type": mapping["workflow_type"], **hop}
            for hop in mapping["routing_history"]
            if isinstance(hop, dict) and hop.get("by") == username
        ]
    return {
        "person": {"kind": "user", "user_id": user.pk, "username": username},
        "user": record,
        "role_assignments": list(
            UserRoleAssignment.objects.filter(user=user)
            .order_by("pk")
            .values(
                "assignment_id",
                "role__role_code",
                "valid_from",
                "valid_until",
                "is_temporary_escalation",
                "reason",
                "granted_by__username",
                "revoked_at",
                "revoked_by__username",
            )
        ),
        "api_tokens": list(
            ApiToken.objects.filter(user=user)
            .order_by("created")
            .values("name", "created", "expiry", "read_only", "last_used_at")
        ),
        "tasks": [
            *_rows(WorkflowTask.objects.filter(Q(assignee=user) | Q(owner=user)), TASK_FIELDS, archived=False),
            *_rows(ArchivedTask.objects.filter(Q(assignee=user) | Q(owner=user)), TASK_FIELDS, archived=True),
        ],
        "task_history": [
            *_rows(TaskHistory.objects.filter(by_user), HISTORY_FIELDS, archived=False),
            *_rows(ArchivedTaskHistory.objects.filter(by_user), HISTORY_FIELDS, archived=True),
        ],
        "cases": _rows(Case.objects.filter(Q(assigned_to=user) | Q(created_by=user)), CASE_FIELDS),
        "case_events": list(
            CaseEvent.objects.filter(actor=user)
            .order_by("pk")
            .values("event_id", "case__case_number", "event_type", "old_values", "new_values", "created_at")
        ),
        "routing_hops": hops,
        # The cases and tasks they read (entitlements.access_audit): what the system holds about their reading.
        "detail_reads": list(
            AccessAuditEntry.objects.filter(Q(reader=user) | Q(via_account=user))
            .order_by("read_at", "access_id")
            .values(
                "read_at",
                "reader__username",
                "via_account__username",
                "object_type",
                "object_id",
                "object_label",
                "channel",
                "outcome",
                "method",
                "path",
                "remote_addr",
            )
        ),
        "security_events": list(
            SecurityEvent.objects.filter(
                Q(actor=user)
                | Q(actor_username=username)
                | Q(on_behalf_of_username=username)
                | Q(details__user=username)
                | Q(details__subject=f"user:{username}")
            )
            .order_by("pk")
            .values(
                "event_id",
                "event_type",
                "actor_username",
                "on_behalf_of_username",
                "remote_addr",
                "path",
                "details",
                "created_at",
            )
        ),
    }


def _subject_document(subjects: list) -> dict:
    return {
        "person": {"kind": "case_subject", "email": subjects[0].email},
        "case_subjects": [
            {
                "subject_id": s.pk,
                "role": s.role,
                "full_name": s.full_name,
                "email": s.email,
                "phone": s.phone,
                "date_of_birth": s.date_of_birth,
                "notes": s.notes,
                "created_at": s.created_at,
                "case_number": s.case.case_number,
            }
            for s in subjects
        ],
        "cases": _rows(Case.objects.filter(pk__in={s.case_id for s in subjects}), CASE_FIELDS),
    }


def _rows(queryset, fields, *, archived: bool | None = None) -> list[dict]:
    # Sealed form values inside variables and history values are the person's data too: opened for the export.
    rows = [{key: reveal(value) for key, value in row.items()} for row in queryset.order_by("pk").values(*fields)]
    if archived is not None:
        for row in rows:
            row["archived"] = archived
    return rows
