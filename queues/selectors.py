"""Reads of queues that services, views and admin share; views and admin learn a user's queues here, not from
entitlements.access directly."""

from __future__ import annotations

from django.db.models import QuerySet

from entitlements.access import queue_names_for, queues_for, users_with
from entitlements.models import Department

from .calendar import WorkCalendar
from .calendar_cache import cached_work_calendar
from .models import BusinessCalendar, WorkflowQueue


def _department_calendar_id(department_id: int | None) -> int | None:
    """The calendar of the department or, failing that, of its nearest ancestor that has one (one query a level)."""
    seen = set()
    while department_id is not None and department_id not in seen:
        seen.add(department_id)
        row = (
            Department.objects.filter(pk=department_id)
            .values_list("parent_id", "business_calendar_link__calendar_id")
            .first()
        )
        if row is None:
            return None
        department_id, calendar_id = row
        if calendar_id is not None:
            return calendar_id
    return None


def queues_for_user(*, user, capability: str) -> QuerySet:
    """The queues where `user` holds `capability` now (entitlements.access decides)."""
    return queues_for(user=user, capability=capability)


def queue_names_for_user(*, user, capability: str) -> list[str]:
    """The names of queues_for_user, read once."""
    return queue_names_for(user=user, capability=capability)


def queue_people(*, queue: WorkflowQueue, capability: str) -> QuerySet:
    """The users who hold `capability` on `queue` now, by username."""
    return users_with(capability=capability, queue=queue).order_by("username")


def queue_business_calendar(*, queue: WorkflowQueue) -> BusinessCalendar | None:
    """The calendar the queue's SLA hours count in: its own, else its department's (or the nearest ancestor's).

    None means round the clock.
    """
    calendar_id = queue.business_calendar_id or _department_calendar_id(queue.department_id)
    if calendar_id is None:
        return None
    return BusinessCalendar.objects.prefetch_related("holidays").get(pk=calendar_id)


def business_calendar_for(*, queue: WorkflowQueue) -> WorkCalendar | None:
    """queue_business_calendar in the form add_business_hours and business_hours_between take; cached
    (queues/calendar_cache.py)."""

    def compute() -> WorkCalendar | None:
        calendar = queue_business_calendar(queue=queue)
        return calendar.work_calendar() if calendar is not None else None

    return cached_work_calendar(queue, compute)
