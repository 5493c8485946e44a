"""Reads of entitlements that views and admin share, so that they never call entitlements.access themselves."""
from __future__ import annotations

from .access import capabilities_by_queue


def queue_capabilities_for_user(*, user) -> dict[str, list[str]]:
    """Each queue `user` may reach now, with the capabilities they hold on it (entitlements.access decides)."""
    return capabilities_by_queue(user=user)
