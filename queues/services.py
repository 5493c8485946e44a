"""Writes of queues: creating them, granting roles their queue permissions, and business calendars."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction

from core.errors import InvalidInput, NotFound
from entitlements.access import may, permission_codename
from entitlements.models import Capability, Department, WorkflowRole

from .escalation import parse_rules
from .locks import queues_for_update
from .models import BusinessCalendar, BusinessHoliday, DepartmentCalendar, QueueGroupObjectPermission, WorkflowQueue


def _queue_permissions(capabilities: list[str]) -> dict[str, Permission]:
    codenames = [permission_codename(c) for c in capabilities]
    return {p.codename: p for p in Permission.objects.filter(content_type__app_label="queues", codename__in=codenames)}


@transaction.atomic
def role_queue_permissions_sync(*, role: WorkflowRole, **signal) -> None:
    """Make the role's group hold exactly the role's capabilities on the role's named queues (receives
    entitlements.signals.role_changed)."""
    if role.group_id is None:
        return
    wanted_permissions = _queue_permissions(role.permissions)
    queues = list(WorkflowQueue.objects.filter(queue_name__in=role.queue_names))
    wanted = {(queue.pk, permission.pk) for queue in queues for permission in wanted_permissions.values()}
    existing = {
        (row.content_object_id, row.permission_id): row.pk
        for row in QueueGroupObjectPermission.objects.filter(group_id=role.group_id)
    }
    stale = [pk for key, pk in existing.items() if key not in wanted]
    QueueGroupObjectPermission.objects.filter(pk__in=stale).delete()
    QueueGroupObjectPermission.objects.bulk_create(
        [
            QueueGroupObjectPermission(group_id=role.group_id, content_object_id=queue_id, permission_id=permission_id)
            for queue_id, permission_id in sorted(wanted - set(existing))
        ]
    )


@transaction.atomic
def queue_save(*, queue_name: str, **fields) -> WorkflowQueue:
    """Create or update a queue; roles that name it get their permissions on it."""
    if "escalation_rules" in fields:
        parse_rules(fields["escalation_rules"])  # InvalidInput naming the bad level
    queue, _ = WorkflowQueue.objects.update_or_create(queue_name=queue_name, defaults=fields)
    for role in WorkflowRole.objects.filter(queue_names__contains=[queue_name]):
        role_queue_permissions_sync(role=role)
    return queue


def _date(value) -> date:
    try:
        return value if isinstance(value, date) else date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{value!r} is not a date", fields={"holidays": ["Dates are YYYY-MM-DD."]}) from None


@transaction.atomic
def business_calendar_save(
    *,
    name: str,
    time_zone: str,
    working_hours: dict | None = None,
    holidays: dict | None = None,
    departments: list[str] | None = None,
) -> BusinessCalendar:
    """Create or update a calendar by name, validated as admin validates it.

    `holidays` ({date: name}) replaces the calendar's holidays and `departments` (dept_codes) the departments whose
    queues fall back to it, when given.
    """
    calendar = BusinessCalendar.objects.filter(name=name).first() or BusinessCalendar(name=name)
    calendar.time_zone = time_zone
    if working_hours is not None:
        calendar.working_hours = working_hours
    try:
        calendar.full_clean()
    except ValidationError as exc:
        raise InvalidInput(f"calendar {name!r} is not valid", fields=exc.message_dict) from None
    calendar.save()
    if holidays is not None:
        calendar.holidays.all().delete()
        BusinessHoliday.objects.bulk_create(
            [BusinessHoliday(calendar=calendar, date=_date(day), name=label) for day, label in holidays.items()]
        )
    if departments is not None:
        found = {d.dept_code: d for d in Department.objects.filter(dept_code__in=departments)}
        missing = sorted(set(departments) - set(found))
        if missing:
            raise InvalidInput(f"no department {', '.join(missing)}", fields={"departments": ["No such department."]})
        calendar.department_links.exclude(department__in=found.values()).delete()
        for department in found.values():
            DepartmentCalendar.objects.update_or_create(department=department, defaults={"calendar": calendar})
    return calendar


# A queue's claim order settings a supervisor sets (flowable.claim_next_task, tasks/sla/aging.py).
PRIORITY_SETTINGS = ("aging_enabled", "priority_weight", "express_threshold", "express_share_percent")


@transaction.atomic
def queue_priority_settings_set(*, user, queue_name: str, **changes) -> WorkflowQueue:
    """Set a queue's aging and express lane (any of PRIORITY_SETTINGS), for a supervisor of that queue; each value
    checked as the model's fields check it (InvalidInput naming the field). Outside the queues the user
    supervises the queue does not exist (NotFound)."""
    unknown = sorted(set(changes) - set(PRIORITY_SETTINGS))
    if unknown:
        raise InvalidInput(
            f"not a priority setting: {', '.join(unknown)}",
            fields={name: ["Not a priority setting."] for name in unknown},
        )
    if not may(user=user, capability=Capability.SUPERVISE, queue_name=queue_name):
        raise NotFound(f"queue {queue_name} not found", code="queue_not_found")
    queue = queues_for_update().get(queue_name=queue_name)
    for name, value in changes.items():
        setattr(queue, name, value)
    try:
        queue.clean_fields(exclude=[f.name for f in WorkflowQueue._meta.fields if f.name not in changes])
    except ValidationError as exc:
        raise InvalidInput(
            "invalid priority settings", fields={name: list(messages) for name, messages in exc.message_dict.items()}
        ) from None
    queue.save(update_fields=[*changes, "updated_at"])
    return queue


@transaction.atomic
def queue_intake_set(*, user, queue_name: str, paused: bool) -> WorkflowQueue:
    """Pause or resume a queue's intake (new tasks refused while paused), for a supervisor of that queue."""
    if not may(user=user, capability=Capability.SUPERVISE, queue_name=queue_name):
        raise NotFound(f"queue {queue_name} not found", code="queue_not_found")
    queue = queues_for_update().get(queue_name=queue_name)
    queue.intake_paused = paused
    queue.save(update_fields=["intake_paused", "updated_at"])
    return queue
