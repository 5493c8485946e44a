"""Reads of entitlements that views and admin share, so that they never call entitlements.access themselves."""

from __future__ import annotations

from django.db.models import QuerySet

from .access import capabilities_by_queue, console_shows_every_row
from .models import AccessAuditEntry


def queue_capabilities_for_user(*, user) -> dict[str, list[str]]:
    """Each queue `user` may reach now, with the capabilities they hold on it (entitlements.access decides)."""
    return capabilities_by_queue(user=user)


def console_rows_unfiltered(*, user) -> bool:
    """Whether the supervisor console shows `user` every row rather than their supervised queues' rows."""
    return console_shows_every_row(user=user)


def detail_reads_of(*, object_type: str, object_id: int) -> QuerySet:
    """The access audit of one case or task: who read it (and who was refused), newest first.

    The audit of an object is for whoever may see the object in the supervisor console: the caller fetched the
    object through the console's scope first (entitlements.admin.DetailReadsAdminMixin).
    """
    return (
        AccessAuditEntry.objects.filter(object_type=object_type, object_id=object_id)
        .select_related("reader", "via_account")
        .order_by("-read_at", "-access_id")
    )
