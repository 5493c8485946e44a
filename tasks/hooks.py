"""Callbacks the tasks app calls when work moves, so that cases (and the engine) can follow without imports."""
from __future__ import annotations

from collections.abc import Callable

_task_moved: list[Callable] = []
_task_completed: list[Callable] = []


def on_task_moved(callback: Callable) -> Callable:
    """`callback(task=, from_queue=, to_queue=, user=, reason=)`, inside the transaction that moved the task."""
    if callback not in _task_moved:
        _task_moved.append(callback)
    return callback


def on_task_completed(callback: Callable) -> Callable:
    """`callback(task=, variables=, user=, via_account=)`, inside the transaction that completed a process task."""
    if callback not in _task_completed:
        _task_completed.append(callback)
    return callback


def task_moved(**kwargs) -> None:
    for callback in _task_moved:
        callback(**kwargs)


def task_completed(**kwargs) -> None:
    for callback in _task_completed:
        callback(**kwargs)
