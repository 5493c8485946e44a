"""Routing strategies: which eligible caseworker a pushed task goes to, and which queue has room.

Pure decisions over data the caller passes in (eligible users with their skills, capacity and current load),
so the tasks app can use them without this app knowing about tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .models import RoutingStrategy, WorkflowQueue

# Under priority-weighted routing, tasks at or above this priority go to the least-loaded user first.
HIGH_PRIORITY_THRESHOLD = 70


@dataclass(frozen=True)
class Candidate:
    user_id: int
    skills: frozenset[str]
    capacity: int
    load: int

    @property
    def has_room(self) -> bool:
        return self.load < self.capacity


def eligible(candidates: Iterable[Candidate], *, required_skills: Iterable[str]) -> list[Candidate]:
    """Users with room who hold every required skill, in user-id order."""
    needed = frozenset(required_skills)
    return sorted((c for c in candidates if c.has_room and needed <= c.skills), key=lambda c: c.user_id)


def _least_loaded(candidates: Sequence[Candidate]) -> Candidate:
    return min(candidates, key=lambda c: (c.load / c.capacity if c.capacity else 1.0, c.load, c.user_id))


def _round_robin(candidates: Sequence[Candidate], *, cursor: int) -> Candidate:
    after = [c for c in candidates if c.user_id > cursor]
    return after[0] if after else candidates[0]


def choose_assignee(
    *, strategy: str, candidates: Iterable[Candidate], required_skills: Iterable[str], priority: int, cursor: int
) -> Candidate | None:
    """The user a new task should be pushed to, or None when nobody eligible has room.

    Round-robin rotates after `cursor` (the queue's last choice, which the caller stores and locks).
    Skill-based prefers the least-loaded of the users with the skills; priority-weighted sends high-priority
    tasks to the least-loaded user and rotates the rest.
    """
    pool = eligible(candidates, required_skills=required_skills)
    if not pool:
        return None
    if strategy == RoutingStrategy.ROUND_ROBIN:
        return _round_robin(pool, cursor=cursor)
    if strategy in (RoutingStrategy.LEAST_LOADED, RoutingStrategy.SKILL_BASED):
        return _least_loaded(pool)
    if strategy == RoutingStrategy.PRIORITY_WEIGHTED:
        return _least_loaded(pool) if priority >= HIGH_PRIORITY_THRESHOLD else _round_robin(pool, cursor=cursor)
    raise ValueError(f"unknown routing strategy {strategy!r}")


def select_optimal_queue(candidate_queues: Iterable[WorkflowQueue]) -> WorkflowQueue | None:
    """The candidate queue with the lowest load relative to its capacity (the seed's selectOptimalQueue)."""
    with_room = [q for q in candidate_queues if not q.intake_paused and q.max_capacity > q.current_load]
    if not with_room:
        return None
    return min(with_room, key=lambda q: (q.current_load / q.max_capacity, q.current_load, q.queue_name))


def overflow_target(queue: WorkflowQueue) -> WorkflowQueue:
    """Where a task bound for `queue` lands: the queue itself while it has room, else along its overflow chain."""
    seen = {queue.pk}
    current = queue
    while (
        current.max_capacity <= current.current_load
        and current.overflow_queue_id
        and current.overflow_queue_id not in seen
    ):
        seen.add(current.overflow_queue_id)
        current = current.overflow_queue
    return current
