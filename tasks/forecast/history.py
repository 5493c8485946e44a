"""Realistic queue history with known rates: a seeded simulation of arrivals, staffing and claim-next service.

Pure Python on the business-hour clock (hour 0 = the first opening; 8 business hours a day, 5 days a week by the
default calendar); `generate_history` (management command) writes it into the real tables through the calendar,
and bench/forecast.py replays it to backtest the risk model. Known rates, by construction:

- arrivals: Poisson, DAILY_TASKS a day on average, scaled by a weekly seasonality (Monday heaviest, Friday
  lightest); a share arrives overnight and lands at the next opening (Monday's batch holds the weekend's);
- staffing: a team of TEAM_SIZE caseworkers, each absent on a given day with ABSENCE_PROBABILITY, and whole weeks
  with fewer people (holidays); each caseworker has a personal speed factor;
- service: lognormal per task type (median, sigma), times the caseworker's speed;
- order: a free caseworker on shift takes the OPEN task first by priority then age (claim-next's order).
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

HOURS_PER_DAY = 8
DAYS_PER_WEEK = 5
HOURS_PER_WEEK = HOURS_PER_DAY * DAYS_PER_WEEK
DAILY_TASKS = 36
OVERNIGHT_SHARE = 0.25
WEEKDAY_FACTORS = (1.35, 1.1, 1.0, 0.9, 0.65)
TEAM_SIZE = 8
ABSENCE_PROBABILITY = 0.12
SHORT_WEEK_PROBABILITY = 0.2  # a holiday week: two of the team away all week
SPEED_SIGMA = 0.2


@dataclass(frozen=True)
class TaskType:
    key: str
    name: str
    priority: int
    weight: float  # share of arrivals
    median_hours: float  # lognormal service time of a caseworker of speed 1
    sigma: float
    sla_hours: float  # business hours from creation to due

    @property
    def mean_hours(self) -> float:
        return self.median_hours * math.exp(self.sigma**2 / 2)


TASK_TYPES = (
    TaskType("triage", "Triage allegation", 70, 0.3, 0.45, 0.6, 8),
    TaskType("review", "Review evidence", 50, 0.5, 1.4, 0.7, 24),
    TaskType("approval", "Approve outcome", 30, 0.2, 0.9, 0.5, 40),
)


@dataclass
class SimTask:
    task_id: int
    task_type: TaskType
    created: float
    due: float
    claimed: float | None = None
    completed: float | None = None
    assignee: int | None = None

    @property
    def breached(self) -> bool:
        return self.completed is None or self.completed > self.due


@dataclass
class History:
    weeks: int
    seed: int
    tasks: list[SimTask]
    caseworkers: list[int]
    speed: dict[int, float]
    on_shift: dict[int, frozenset[int]] = field(default_factory=dict)  # day -> caseworkers present

    @property
    def hours(self) -> float:
        return float(self.weeks * HOURS_PER_WEEK)


def generate(
    *, weeks: int = 12, seed: int = 1, daily_tasks: float = DAILY_TASKS, team_size: int = TEAM_SIZE
) -> History:
    rng = random.Random(seed)
    caseworkers = list(range(1, team_size + 1))
    speed = {c: math.exp(rng.gauss(0, SPEED_SIGMA)) for c in caseworkers}
    days = weeks * DAYS_PER_WEEK
    on_shift: dict[int, frozenset[int]] = {}
    for week in range(weeks):
        away_all_week = set(rng.sample(caseworkers, 2)) if rng.random() < SHORT_WEEK_PROBABILITY else set()
        for weekday in range(DAYS_PER_WEEK):
            present = [c for c in caseworkers if c not in away_all_week and rng.random() > ABSENCE_PROBABILITY]
            on_shift[week * DAYS_PER_WEEK + weekday] = frozenset(present or caseworkers[:1])

    arrivals: list[tuple[float, TaskType]] = []
    weights = [t.weight for t in TASK_TYPES]
    for day in range(days):
        expected = daily_tasks * WEEKDAY_FACTORS[day % DAYS_PER_WEEK]
        opening = float(day * HOURS_PER_DAY)
        for _ in range(_poisson(rng, expected * OVERNIGHT_SHARE)):
            arrivals.append((opening, rng.choices(TASK_TYPES, weights)[0]))
        in_hours = expected * (1 - OVERNIGHT_SHARE)
        t = opening
        while True:
            t += rng.expovariate(in_hours / HOURS_PER_DAY)
            if t >= opening + HOURS_PER_DAY:
                break
            arrivals.append((t, rng.choices(TASK_TYPES, weights)[0]))
    arrivals.sort(key=lambda a: a[0])
    tasks = [
        SimTask(task_id=i + 1, task_type=kind, created=at, due=at + kind.sla_hours)
        for i, (at, kind) in enumerate(arrivals)
    ]
    _serve(rng, tasks, on_shift=on_shift, speed=speed, end=float(days * HOURS_PER_DAY))
    return History(weeks=weeks, seed=seed, tasks=tasks, caseworkers=caseworkers, speed=speed, on_shift=on_shift)


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: the means here are small (tens).
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _serve(rng, tasks: list[SimTask], *, on_shift: dict[int, frozenset[int]], speed: dict[int, float], end: float):
    """Event simulation: caseworkers on shift take the best OPEN task (priority, then age) whenever they are free."""
    free_at: dict[int, float] = dict.fromkeys(speed, 0.0)
    waiting: list[tuple[int, float, int]] = []  # (-priority, created, task_id)
    by_id = {t.task_id: t for t in tasks}
    next_arrival = 0
    # Decision moments: each arrival, each completion, each opening of a day.
    moments = sorted({t.created for t in tasks} | {float(d * HOURS_PER_DAY) for d in range(len(on_shift))})
    pending = list(moments)
    heapq.heapify(pending)
    while pending:
        now = heapq.heappop(pending)
        if now >= end:
            break
        while next_arrival < len(tasks) and tasks[next_arrival].created <= now:
            task = tasks[next_arrival]
            heapq.heappush(waiting, (-task.task_type.priority, task.created, task.task_id))
            next_arrival += 1
        day = int(now // HOURS_PER_DAY)
        present = sorted(on_shift.get(day, ()), key=lambda c: free_at[c])
        for worker in present:
            if not waiting or free_at[worker] > now:
                continue
            _, _, task_id = heapq.heappop(waiting)
            task = by_id[task_id]
            kind = task.task_type
            service = math.exp(rng.gauss(math.log(kind.median_hours), kind.sigma)) * speed[worker]
            task.claimed, task.assignee = now, worker
            task.completed = now + service
            free_at[worker] = task.completed
            heapq.heappush(pending, task.completed)
