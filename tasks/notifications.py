"""In-app notifications: written where their events happen, read and marked read by their recipient only.

Events and who hears of them:
- push routing gives a task to a caseworker (tasks/services.py: _push): that caseworker;
- the SLA sweep escalates a task (tasks/sla/escalation.py): its assignee, "at risk" when the level's trigger is
  before the due date; a supervisor it is reassigned to hears that the task is now theirs;
- an SLA breach or capacity alert is raised (tasks/sla/alerts.py, in the raising statement): the supervisors of
  its queue.

A notification for someone else is a system write (system_scope): the caller has already decided who is told. The
recipient reaches their own only (row-level security, tasks/sql/notifications_*.sql, behind the filters here).
Texts name tasks and queues, never a case's allegations or a sealed field. A daily job purges old ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.errors import NotFound
from entitlements.row_scope import acting_for_user, system_scope

from .locks import notifications_for_update
from .models import Notification, NotificationKind

TEXT_CHARS = 500
# The bell counts at most this many unread ones ("99+" past it): the count reads only what it shows.
UNREAD_COUNT_CAP = 100
LIST_LIMIT = 100
MAX_ID = 2**63 - 1  # bigint: a larger id in a URL names nothing, rather than failing in PostgreSQL


@dataclass(frozen=True)
class Notice:
    recipient_id: int
    kind: str
    text: str
    link: str = ""


def task_link(task_id: int) -> str:
    return f"/tasks/{task_id}/"


def task_label(task_id: int, name: str) -> str:
    """How a notice names a task: its number and name (never its case's allegations or a sealed field)."""
    return f"#{task_id} “{name}”"


def notifications_create(*, notices: Iterable[Notice], now: datetime | None = None) -> int:
    """Write the notices in one statement, in the caller's transaction, as the system. Returns how many."""
    now = now or timezone.now()
    rows = [
        Notification(recipient_id=n.recipient_id, kind=n.kind, text=n.text[:TEXT_CHARS], link=n.link, created_at=now)
        for n in notices
        if n.recipient_id is not None
    ]
    if not rows:
        return 0
    with system_scope():
        Notification.objects.bulk_create(rows)
    return len(rows)


def task_assigned_notify(*, task, assignee_id: int, reason: str) -> None:
    """Tell a caseworker a task was given to them (push routing, an escalation to a supervisor)."""
    queue = getattr(task, "queue_id", "")
    notifications_create(
        notices=[
            Notice(
                recipient_id=assignee_id,
                kind=NotificationKind.TASK_ASSIGNED,
                text=f"Task {task_label(task.pk, task.name)} in queue {queue} was assigned to you ({reason}).",
                link=task_link(task.pk),
            )
        ]
    )


# --- reads: the recipient's own ----------------------------------------------------------------------------------


def notifications_for(*, user) -> QuerySet:
    """The user's notifications, newest first (none for an anonymous or inactive user)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Notification.objects.none()
    return Notification.objects.filter(recipient_id=user.pk)


def unread_count(*, user) -> int:
    """How many of the user's notifications are unread, up to UNREAD_COUNT_CAP (idx_notifications_unread)."""
    return notifications_for(user=user).filter(read_at__isnull=True).order_by()[:UNREAD_COUNT_CAP].count()


def notification_for_user(*, user, notification_id: int, for_update: bool = False) -> Notification:
    """Fetch one of the user's notifications; anyone else's does not exist for them (NotFound)."""
    if not 0 < notification_id <= MAX_ID:
        raise NotFound(f"notification {notification_id} not found", code="notification_not_found")
    queryset = notifications_for(user=user)
    if for_update:
        queryset = notifications_for_update(queryset)
    notification = queryset.filter(pk=notification_id).first()
    if notification is None:
        raise NotFound(f"notification {notification_id} not found", code="notification_not_found")
    return notification


# --- writes by the recipient ---------------------------------------------------------------------------------------


@transaction.atomic
@acting_for_user
def notification_mark_read(*, user, notification_id: int) -> Notification:
    """Mark one of the user's notifications read (again: no change) and return it."""
    notification = notification_for_user(user=user, notification_id=notification_id, for_update=True)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
@acting_for_user
def notifications_mark_all_read(*, user) -> int:
    """Mark every unread notification of the user read; returns how many."""
    return notifications_for(user=user).filter(read_at__isnull=True).update(read_at=timezone.now())


# --- the purge job -------------------------------------------------------------------------------------------------


@transaction.atomic
def notifications_purge(*, now: datetime | None = None) -> int:
    """Delete notifications read over NOTIFICATIONS_KEEP_READ_DAYS ago and any made over NOTIFICATIONS_KEEP_DAYS ago."""
    now = now or timezone.now()
    read_before = now - timedelta(days=settings.NOTIFICATIONS_KEEP_READ_DAYS)
    any_before = now - timedelta(days=settings.NOTIFICATIONS_KEEP_DAYS)
    with system_scope():
        deleted, _ = Notification.objects.filter(Q(created_at__lt=any_before) | Q(read_at__lt=read_before)).delete()
    return deleted
