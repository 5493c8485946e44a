"""Routing strategies: which eligible caseworker a pushed task goes to, and which queue has room.

Pure decisions over data the caller passes in (eligible users with their skills, capacity and current load),
so the tasks app can use them without this app knowing about tasks. Each decision can say why (`route`,
`overflow_route`): every candidate considered, the reason each one passed over was, and the rule that chose, as
the compact dict the task's history keeps (tasks/routing_explanation.py puts it into words).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .models import RoutingStrategy, WorkflowQueue

# Under priority-weighted routing, tasks at or above this priority go to the least-loaded user first.
HIGH_PRIORITY_THRESHOLD = 70

# An explanation lists at most this many candidates (users or queues); the rest are counted, so a history row
# stays small however many people work a queue.
MAX_EXPLAINED = 10

# Why a candidate was passed over: stable codes, kept in the task's history.
AT_CAPACITY = "at_capacity"
MISSING_SKILLS = "missing_skills"
MORE_LOADED = "more_loaded"
TIED_EARLIER_USER_FIRST = "tied"
NOT_NEXT_IN_ROTATION = "not_next_in_rotation"

# The rule that chose.
LEAST_LOADED_RULE = "least_loaded"
ROTATION_RULE = "next_in_rotation"
NOBODY_ELIGIBLE = "nobody_eligible"


@dataclass(frozen=True)
class Candidate:
    user_id: int
    skills: frozenset[str]
    capacity: int
    load: int
    username: str = ""

    @property
    def has_room(self) -> bool:
        return self.load < self.capacity


def eligible(candidates: Iterable[Candidate], *, required_skills: Iterable[str]) -> list[Candidate]:
    """Users with room who hold every required skill, in user-id order."""
    needed = frozenset(required_skills)
    return sorted((c for c in candidates if c.has_room and needed <= c.skills), key=lambda c: c.user_id)


def _load_key(candidate: Candidate) -> tuple[float, int]:
    return (candidate.load / candidate.capacity if candidate.capacity else 1.0, candidate.load)


def _least_loaded(candidates: Sequence[Candidate]) -> Candidate:
    return min(candidates, key=lambda c: (*_load_key(c), c.user_id))


def _round_robin(candidates: Sequence[Candidate], *, cursor: int) -> Candidate:
    after = [c for c in candidates if c.user_id > cursor]
    return after[0] if after else candidates[0]


@dataclass(frozen=True)
class RoutingDecision:
    """Whom a strategy chose (None: nobody eligible had room), by which rule, and why each other candidate was
    passed over."""

    strategy: str
    chosen: Candidate | None
    rule: str
    candidates: tuple[Candidate, ...]
    reasons: dict[int, str]  # user id → reason code, for every candidate but the chosen
    missing_skills: dict[int, tuple[str, ...]]
    required_skills: tuple[str, ...]
    priority: int
    cursor: int

    def explanation(self, *, queue: str, overflow: list[dict] | None = None) -> dict:
        """The decision as the task's history keeps it: compact, at most MAX_EXPLAINED candidates (the chosen one
        always among them), user-id order."""
        shown = list(self.candidates[:MAX_EXPLAINED])
        if self.chosen is not None and self.chosen not in shown:
            shown[-1] = self.chosen  # its id is above every one shown: the order holds
        entries = []
        for candidate in shown:
            entry = {
                "user": candidate.username or str(candidate.user_id),
                "load": candidate.load,
                "capacity": candidate.capacity,
            }
            if self.chosen is not None and candidate.user_id == self.chosen.user_id:
                entry["chosen"] = True
            else:
                entry["reason"] = self.reasons[candidate.user_id]
                if self.missing_skills.get(candidate.user_id):
                    entry["missing"] = list(self.missing_skills[candidate.user_id])
            entries.append(entry)
        explained = {
            "kind": "push",
            "strategy": self.strategy,
            "queue": queue,
            "priority": self.priority,
            "required_skills": list(self.required_skills),
            "rule": self.rule,
            "chosen": (self.chosen.username or str(self.chosen.user_id)) if self.chosen else None,
            "candidates": entries,
            "omitted": len(self.candidates) - len(shown),
        }
        if self.strategy == RoutingStrategy.PRIORITY_WEIGHTED:
            explained["threshold"] = HIGH_PRIORITY_THRESHOLD
        if self.rule == ROTATION_RULE:
            previous = next((c for c in self.candidates if c.user_id == self.cursor), None)
            explained["after"] = (previous.username or str(previous.user_id)) if previous else None
        if overflow:
            explained["overflow"] = overflow
        return explained


def route(
    *, strategy: str, candidates: Iterable[Candidate], required_skills: Iterable[str], priority: int, cursor: int
) -> RoutingDecision:
    """The user a new task should be pushed to, and why; `chosen` is None when nobody eligible has room.

    Round-robin rotates after `cursor` (the queue's last choice, which the caller stores and locks).
    Skill-based prefers the least-loaded of the users with the skills; priority-weighted sends high-priority
    tasks to the least-loaded user and rotates the rest.
    """
    everyone = sorted(candidates, key=lambda c: c.user_id)
    needed = frozenset(required_skills)
    pool = eligible(everyone, required_skills=needed)
    chosen, rule = None, NOBODY_ELIGIBLE
    if pool:
        if strategy == RoutingStrategy.ROUND_ROBIN:
            rule = ROTATION_RULE
        elif strategy in (RoutingStrategy.LEAST_LOADED, RoutingStrategy.SKILL_BASED):
            rule = LEAST_LOADED_RULE
        elif strategy == RoutingStrategy.PRIORITY_WEIGHTED:
            rule = LEAST_LOADED_RULE if priority >= HIGH_PRIORITY_THRESHOLD else ROTATION_RULE
        else:
            raise ValueError(f"unknown routing strategy {strategy!r}")
        chosen = _least_loaded(pool) if rule == LEAST_LOADED_RULE else _round_robin(pool, cursor=cursor)
    reasons, missing = {}, {}
    for candidate in everyone:
        if chosen is not None and candidate.user_id == chosen.user_id:
            continue
        lacking = tuple(sorted(needed - candidate.skills))
        if lacking:
            reasons[candidate.user_id], missing[candidate.user_id] = MISSING_SKILLS, lacking
        elif not candidate.has_room:
            reasons[candidate.user_id] = AT_CAPACITY
        elif rule == ROTATION_RULE:
            reasons[candidate.user_id] = NOT_NEXT_IN_ROTATION
        elif _load_key(candidate) > _load_key(chosen):
            reasons[candidate.user_id] = MORE_LOADED
        else:
            reasons[candidate.user_id] = TIED_EARLIER_USER_FIRST
    return RoutingDecision(
        strategy=str(strategy),
        chosen=chosen,
        rule=rule,
        candidates=tuple(everyone),
        reasons=reasons,
        missing_skills=missing,
        required_skills=tuple(sorted(needed)),
        priority=priority,
        cursor=cursor,
    )


def choose_assignee(
    *, strategy: str, candidates: Iterable[Candidate], required_skills: Iterable[str], priority: int, cursor: int
) -> Candidate | None:
    """The user a new task should be pushed to, or None when nobody eligible has room (see `route`)."""
    return route(
        strategy=strategy, candidates=candidates, required_skills=required_skills, priority=priority, cursor=cursor
    ).chosen


def select_optimal_queue(candidate_queues: Iterable[WorkflowQueue]) -> WorkflowQueue | None:
    """The candidate queue with the lowest load relative to its capacity (the seed's selectOptimalQueue)."""
    with_room = [q for q in candidate_queues if not q.intake_paused and q.max_capacity > q.current_load]
    if not with_room:
        return None
    return min(with_room, key=lambda q: (q.current_load / q.max_capacity, q.current_load, q.queue_name))


def overflow_route(queue: WorkflowQueue) -> tuple[WorkflowQueue, list[dict]]:
    """Where a task bound for `queue` lands: the queue itself while it has room, else along its overflow chain;
    with the queues passed over on the way (each at capacity), for the task's history."""
    seen = {queue.pk}
    current = queue
    hops = []
    while (
        current.max_capacity <= current.current_load
        and current.overflow_queue_id
        and current.overflow_queue_id not in seen
    ):
        hops.append(
            {
                "queue": current.queue_name,
                "reason": AT_CAPACITY,
                "load": current.current_load,
                "capacity": current.max_capacity,
            }
        )
        seen.add(current.overflow_queue_id)
        current = current.overflow_queue
    return current, hops[:MAX_EXPLAINED]


def overflow_target(queue: WorkflowQueue) -> WorkflowQueue:
    """Where a task bound for `queue` lands: the queue itself while it has room, else along its overflow chain."""
    return overflow_route(queue)[0]
