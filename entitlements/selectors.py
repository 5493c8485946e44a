"""Reads of entitlements that views and admin share, so that they never call entitlements.access themselves."""

from __future__ import annotations

from .access import capabilities_by_queue, console_shows_every_row


def queue_capabilities_for_user(*, user) -> dict[str, list[str]]:
    """Each queue `user` may reach now, with the capabilities they hold on it (entitlements.access decides)."""
    return capabilities_by_queue(user=user)


def console_rows_unfiltered(*, user) -> bool:
    """Whether the supervisor console shows `user` every row rather than their supervised queues' rows."""
    return console_shows_every_row(user=user)
