"""Callbacks the tasks app calls when work moves, so that cases (and the engine) can follow without imports."""
from __future__ import annotations

from collections.abc import Callable

_task_moved: list[Callable] = []
_task_completed: list[Callable] = []
_process_task_opened: list[Callable] = []
_process_completed: list[Callable] = []
_tasks_moved_in_bulk: list[Callable] = []
_tasks_escalated: list[Callable] = []


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


def on_process_task_opened(callback: Callable) -> Callable:
    """`callback(instance=, task=, user=)`, when the engine opens a task of a process instance."""
    if callback not in _process_task_opened:
        _process_task_opened.append(callback)
    return callback


def process_task_opened(**kwargs) -> None:
    for callback in _process_task_opened:
        callback(**kwargs)


def on_process_completed(callback: Callable) -> Callable:
    """`callback(instance=)`, inside the transaction in which a process instance reached its end."""
    if callback not in _process_completed:
        _process_completed.append(callback)
    return callback


def process_completed(**kwargs) -> None:
    for callback in _process_completed:
        callback(**kwargs)


def on_tasks_moved_in_bulk(callback: Callable) -> Callable:
    """`callback(moves=[{task_id, process_instance_id, from_queue, to_queue}], reason=, at=)`, set-based moves."""
    if callback not in _tasks_moved_in_bulk:
        _tasks_moved_in_bulk.append(callback)
    return callback


def tasks_moved_in_bulk(**kwargs) -> None:
    for callback in _tasks_moved_in_bulk:
        callback(**kwargs)


def on_tasks_escalated(callback: Callable) -> Callable:
    """`callback(outcomes=[EscalationOutcome])` for escalation levels that ask to notify."""
    if callback not in _tasks_escalated:
        _tasks_escalated.append(callback)
    return callback


def tasks_escalated(**kwargs) -> None:
    for callback in _tasks_escalated:
        callback(**kwargs)
