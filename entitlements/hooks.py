"""Callbacks other apps register, so that entitlements can announce changes without importing them."""
from __future__ import annotations

from collections.abc import Callable

_role_changed: list[Callable] = []


def on_role_changed(callback: Callable) -> Callable:
    """Register `callback(role=...)`, called inside the transaction that created or changed a workflow role."""
    if callback not in _role_changed:
        _role_changed.append(callback)
    return callback


def role_changed(*, role) -> None:
    for callback in _role_changed:
        callback(role=role)
