"""Staffing what-if: a discrete-event simulation (SimPy) of one queue over a horizon, replicated into bands.

Pure Python on the business-hour clock (hour 0 = the fit window's first working moment; a working day is a `Day`
of the queue's calendar), no database: tasks/forecast/whatif_services.py feeds it from a queue's rows and
bench/forecast.py backtests it on generated history (tasks/forecast/history.py).

What is fitted from the queue's past (`fit`):
- arrivals: per weekday, a batch at the opening (tasks created while the queue was closed land there, Monday's
  holds the weekend's) and a Poisson rate per business hour of the day (weekly and daily seasonality); the mix of
  task types, each with its usual priority and SLA (median business hours from creation to due);
- service: lognormal per task type, times a speed factor per caseworker (fitted together in log space), so a
  slow caseworker is slow on every type;
- staffing: who worked the queue (claimed one of its tasks) on each day, and each caseworker's attendance (the
  share of the window's days they did).

What is simulated (`simulate`): caseworkers on shift on a day take, whenever they are free, the best OPEN task
they may do in claim-next's order (priority, then age), with the queue's escalation rules raising the priority of
tasks that meet a trigger (`raise_priority` only: the other actions move work out of the queue's own figures);
a service started late runs on into the next working day, as a claimed task does. The initial state is the queue's
backlog (OPEN tasks waiting, CLAIMED ones in service with the rest of a service at least as long as their elapsed
time). Staffing is either the observed days (a backtest) or drawn per day from each caseworker's attendance,
with N more or fewer average caseworkers and specialists who take only some task types (the skill mix).

Each replication draws its own arrivals, services and attendance from a seeded generator; the bands are the 10th,
50th and 90th percentiles over the replications of: the backlog (OPEN tasks) at each business hour, the median and
90th percentile wait (creation to claim; a task still waiting at the end counts its wait so far), and SLA
compliance (of the tasks due within the horizon, the share completed by their due time).
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import simpy

DEFAULT_REPLICATIONS = 30
DEFAULT_SEED = 1
# A task created within this many business hours of a day's opening counts as landing there (created while closed).
AT_OPENING = 1e-6
# A service shorter than this is not a service (a claim released at once): it would only blur the lognormal fit.
MIN_SERVICE_HOURS = 1e-3
DEFAULT_SERVICE = (0.0, 1.0)  # (mu, sigma) of log hours for a task type without history: a median of one hour
MAX_PRIORITY = 100
BAND_QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class Day:
    """A working day on the business-hour clock: it opens at `start` and lasts `hours`."""

    start: float
    hours: float
    weekday: int  # 0 = Monday


@dataclass(frozen=True)
class PastTask:
    """One task of the queue's history on the business-hour clock (None: not yet)."""

    task_id: int
    task_type: str
    priority: int
    created: float
    due: float | None
    claimed: float | None = None
    completed: float | None = None
    assignee: int | None = None


@dataclass(frozen=True)
class TaskKind:
    key: str
    priority: int
    share: float
    sla_hours: float | None
    service_mu: float  # log business hours of a caseworker of speed 1
    service_sigma: float


@dataclass(frozen=True)
class QueueFit:
    kinds: tuple[TaskKind, ...]
    opening_batch: dict[int, float]  # weekday -> mean tasks landing at the opening
    hourly_rate: dict[tuple[int, int], float]  # (weekday, hour of the working day) -> tasks per business hour
    speed: dict[int, float]  # caseworker -> service time factor (1 = the team's usual)
    attendance: dict[int, float]  # caseworker -> share of the window's days they worked the queue
    days: int  # working days in the window

    @property
    def kind_by_key(self) -> dict[str, TaskKind]:
        return {kind.key: kind for kind in self.kinds}

    def daily_arrivals(self, weekday: int) -> float:
        return self.opening_batch.get(weekday, 0.0) + sum(
            rate for (day, _), rate in self.hourly_rate.items() if day == weekday
        )


@dataclass(frozen=True)
class Caseworker:
    worker_id: int
    speed: float = 1.0
    attendance: float = 1.0
    task_types: frozenset[str] | None = None  # None: every type

    def may_do(self, task_type: str) -> bool:
        return self.task_types is None or task_type in self.task_types


@dataclass(frozen=True)
class Escalation:
    """One escalation level as the simulation applies it: a trigger time relative to the task, a priority raise."""

    trigger: str  # overdue, before_due, overdue_by, open_longer_than
    hours: float
    raise_priority: int

    def at(self, *, created: float, due: float | None) -> float | None:
        if self.trigger == "open_longer_than":
            return created + self.hours
        if due is None:
            return None
        return {"overdue": due, "before_due": due - self.hours, "overdue_by": due + self.hours}.get(self.trigger)


@dataclass(frozen=True)
class Scenario:
    start: float
    days: tuple[Day, ...]  # the horizon's working days, in order; the first may be under way at `start`
    team: tuple[Caseworker, ...]
    backlog: tuple[PastTask, ...] = ()  # OPEN (claimed None) and CLAIMED tasks at `start`
    staffing: dict[int, frozenset[int]] | None = None  # day index -> caseworkers present (None: by attendance)
    escalations: tuple[Escalation, ...] = ()
    # The arrivals to replay (a backtest of the queue's mechanics alone); None: drawn from the fit.
    arrivals: tuple[PastTask, ...] | None = None
    # Where the horizon ends when that is not the close of its last day (a horizon of whole days from a moment
    # in the middle of one ends at the same time of day); None: the close of the last day.
    until: float | None = None

    @property
    def end(self) -> float:
        if self.until is not None:
            return self.until
        return self.days[-1].start + self.days[-1].hours if self.days else self.start


@dataclass(frozen=True)
class Outcome:
    """One replication, or the observed history measured the same way."""

    backlog: tuple[int, ...]  # OPEN tasks at each whole business hour from the start
    wait_mean: float | None
    wait_p50: float | None
    wait_p90: float | None
    sla_compliance: float | None  # 0..1
    arrivals: int
    completed: int


# --- fitting --------------------------------------------------------------------------------------------------


def day_of(days: list[Day] | tuple[Day, ...], moment: float) -> int | None:
    """Index of the day holding `moment` (a day's closing belongs to the next one), None outside them all."""
    low, high = 0, len(days) - 1
    while low <= high:
        middle = (low + high) // 2
        day = days[middle]
        if moment < day.start:
            high = middle - 1
        elif moment >= day.start + day.hours:
            low = middle + 1
        else:
            return middle
    return None


def fit(*, tasks: Iterable[PastTask], days: list[Day], since: float, until: float) -> QueueFit:
    """The queue's arrival, service and staffing distributions from its tasks in [since, until)."""
    window = [d for d in days if since <= d.start and d.start + d.hours <= until + AT_OPENING]
    weekdays = Counter(d.weekday for d in window)
    batch: Counter = Counter()
    hourly: Counter = Counter()
    types: Counter = Counter()
    priorities: dict[str, Counter] = defaultdict(Counter)
    sla: dict[str, list[float]] = defaultdict(list)
    services: list[tuple[str, int, float]] = []
    present: dict[int, set[int]] = defaultdict(set)
    for task in tasks:
        if since <= task.created < until:
            index = day_of(window, task.created)
            if index is not None:
                day = window[index]
                offset = task.created - day.start
                if offset < AT_OPENING:
                    batch[day.weekday] += 1
                else:
                    hourly[(day.weekday, int(offset))] += 1
            types[task.task_type] += 1
            priorities[task.task_type][task.priority] += 1
            if task.due is not None:
                sla[task.task_type].append(task.due - task.created)
        if task.claimed is not None and task.assignee is not None and since <= task.claimed < until:
            index = day_of(window, task.claimed)
            if index is not None:
                present[index].add(task.assignee)
        if (
            task.completed is not None
            and task.claimed is not None
            and task.assignee is not None
            and since <= task.completed < until
            and task.completed - task.claimed >= MIN_SERVICE_HOURS
        ):
            services.append((task.task_type, task.assignee, math.log(task.completed - task.claimed)))
    total = sum(types.values()) or 1
    mu, sigma, speed = _fit_service(services)
    kinds = tuple(
        TaskKind(
            key=key,
            priority=priorities[key].most_common(1)[0][0],
            share=count / total,
            sla_hours=statistics.median(sla[key]) if sla[key] else None,
            service_mu=mu.get(key, DEFAULT_SERVICE[0]),
            service_sigma=sigma.get(key, DEFAULT_SERVICE[1]),
        )
        for key, count in sorted(types.items())
    )
    workers = {w for day in present.values() for w in day} | set(speed)
    attendance = {w: sum(w in day for day in present.values()) / max(len(window), 1) for w in workers}
    return QueueFit(
        kinds=kinds,
        opening_batch={weekday: batch[weekday] / count for weekday, count in weekdays.items()},
        hourly_rate={(weekday, hour): n / weekdays[weekday] for (weekday, hour), n in hourly.items()},
        speed={w: speed.get(w, 1.0) for w in workers},
        attendance=attendance,
        days=len(window),
    )


def _fit_service(services: list[tuple[str, int, float]], rounds: int = 5):
    """log(service) = mu[type] + log(speed[caseworker]) + noise(sigma[type]): alternating means (a two-way
    fixed-effects fit), the speeds normalised to a geometric mean of 1."""
    by_type: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for task_type, worker, log_hours in services:
        by_type[task_type].append((worker, log_hours))
    log_speed: dict[int, float] = defaultdict(float)
    mu: dict[str, float] = {}
    for _ in range(rounds):
        mu = {t: statistics.fmean(x - log_speed[w] for w, x in rows) for t, rows in by_type.items()}
        residual: dict[int, list[float]] = defaultdict(list)
        for task_type, worker, log_hours in services:
            residual[worker].append(log_hours - mu[task_type])
        log_speed = defaultdict(float, {w: statistics.fmean(r) for w, r in residual.items()})
        centre = statistics.fmean(log_speed.values()) if log_speed else 0.0
        log_speed = defaultdict(float, {w: s - centre for w, s in log_speed.items()})
    sigma = {}
    for task_type, rows in by_type.items():
        residuals = [x - mu[task_type] - log_speed[w] for w, x in rows]
        sigma[task_type] = statistics.pstdev(residuals) if len(residuals) > 1 else DEFAULT_SERVICE[1]
    return mu, sigma, {w: math.exp(s) for w, s in log_speed.items()}


def observed_staffing(*, tasks: Iterable[PastTask], days: list[Day]) -> dict[int, frozenset[int]]:
    """Day index -> the caseworkers who claimed one of the queue's tasks that day (who worked it)."""
    present: dict[int, set[int]] = defaultdict(set)
    for task in tasks:
        if task.claimed is not None and task.assignee is not None:
            index = day_of(days, task.claimed)
            if index is not None:
                present[index].add(task.assignee)
    return {index: frozenset(workers) for index, workers in present.items()}


def team_of(fit_: QueueFit, *, delta: int = 0, specialists: dict[str, int] | None = None) -> tuple[Caseworker, ...]:
    """The observed team (each caseworker at their speed and attendance), with `delta` more average caseworkers
    (or fewer: the ones closest to the team's median throughput leave) and `specialists[type]` more who take only
    that type."""
    team = [
        Caseworker(worker_id=w, speed=fit_.speed[w], attendance=fit_.attendance[w]) for w in sorted(fit_.attendance)
    ]
    usual_attendance = statistics.median([c.attendance for c in team]) if team else 1.0
    next_id = -1
    if delta < 0:
        throughput = {c.worker_id: c.attendance / c.speed for c in team}
        middle = statistics.median(throughput.values()) if throughput else 0.0
        leaving = sorted(team, key=lambda c: (abs(throughput[c.worker_id] - middle), c.worker_id))[:-delta]
        team = [c for c in team if c not in leaving]
    for _ in range(max(delta, 0)):
        team.append(Caseworker(worker_id=next_id, speed=1.0, attendance=usual_attendance))
        next_id -= 1
    for task_type, count in sorted((specialists or {}).items()):
        for _ in range(count):
            team.append(
                Caseworker(worker_id=next_id, speed=1.0, attendance=usual_attendance, task_types=frozenset([task_type]))
            )
            next_id -= 1
    return tuple(team)


# --- simulation -----------------------------------------------------------------------------------------------


@dataclass
class _Task:
    task_id: int
    kind: str
    priority: int
    created: float
    due: float | None
    escalations: list[tuple[float, int]] = field(default_factory=list)  # (from, raise), in time order
    claimed: float | None = None
    completed: float | None = None
    version: int = 0  # bumped when an escalation re-ranks the task: older heap entries are stale

    def priority_at(self, now: float) -> int:
        return min(MAX_PRIORITY, self.priority + sum(r for at, r in self.escalations if at <= now))


class _Run:
    def __init__(self, *, fit_: QueueFit, scenario: Scenario, rng: random.Random):
        self.env = simpy.Environment(initial_time=scenario.start)
        self.fit, self.scenario, self.rng = fit_, scenario, rng
        self.kinds = fit_.kind_by_key
        # The OPEN tasks by id, and per task type a heap in claim-next's order (stale entries skipped when met):
        # a caseworker's pick looks at the head of each type they may do, not at the whole backlog.
        self.waiting: dict[int, _Task] = {}
        self.heaps: dict[str, list[tuple[int, float, int, int]]] = defaultdict(list)
        self.tasks: list[_Task] = []
        self.free = {c.worker_id for c in scenario.team}
        self.present: set[int] = set()
        self.by_id = {c.worker_id: c for c in scenario.team}
        self.backlog_series: list[int] = []
        self.next_id = 0
        self.dispatch_pending = False

    # service time of a kind by a caseworker
    def service(self, kind: str, worker: Caseworker | None) -> float:
        spec = self.kinds.get(kind)
        mu, sigma = (spec.service_mu, spec.service_sigma) if spec else DEFAULT_SERVICE
        return math.exp(self.rng.gauss(mu, sigma)) * (worker.speed if worker else 1.0)

    def new_task(self, *, kind: str, priority: int, created: float, due: float | None, task_id=None) -> _Task:
        self.next_id += 1
        task = _Task(task_id=task_id or -self.next_id, kind=kind, priority=priority, created=created, due=due)
        raised_from = created
        for level in self.scenario.escalations:
            at = level.at(created=created, due=due)
            if at is None:
                break
            raised_from = max(raised_from, at)  # level L applies only after level L-1
            task.escalations.append((raised_from, level.raise_priority))
        self.tasks.append(task)
        return task

    def request_dispatch(self):
        """Dispatch once everything else due at this moment has happened: a day's opening batch arrives whole and
        the day's staff come on shift before anyone picks, as claim-next sees the queue at that moment."""
        if not self.dispatch_pending:
            self.dispatch_pending = True
            self.env.process(self._dispatch_when_settled())

    def _dispatch_when_settled(self):
        while self.env.peek() <= self.env.now:
            yield self.env.timeout(0)
        self.dispatch_pending = False
        self.dispatch()

    def enqueue(self, task: _Task):
        self.waiting[task.task_id] = task
        self._push(task)
        for at, _ in task.escalations:
            if at > self.env.now:
                raised = self.env.timeout(at - self.env.now)
                raised.callbacks.append(lambda _event, task=task: self._rerank(task))

    def _push(self, task: _Task):
        entry = (-task.priority_at(self.env.now), task.created, task.task_id, task.version)
        heapq.heappush(self.heaps[task.kind], entry)

    def _rerank(self, task: _Task):
        if task.task_id in self.waiting:
            task.version += 1
            self._push(task)

    def _best_for(self, worker: Caseworker) -> tuple[int, float, int, int] | None:
        best = None
        for kind, heap in self.heaps.items():
            if not worker.may_do(kind):
                continue
            while heap and (heap[0][2] not in self.waiting or self.waiting[heap[0][2]].version != heap[0][3]):
                heapq.heappop(heap)
            if heap and (best is None or heap[0] < best):
                best = heap[0]
        return best

    def dispatch(self):
        now = self.env.now
        for worker_id in sorted(self.present & self.free):
            worker = self.by_id[worker_id]
            best = self._best_for(worker)
            if best is None:
                continue
            task = self.waiting.pop(best[2])
            self.free.discard(worker_id)
            task.claimed = now
            self.env.process(self.serve(task, worker, self.service(task.kind, worker)))

    def serve(self, task: _Task, worker: Caseworker | None, hours: float):
        yield self.env.timeout(hours)
        task.completed = self.env.now
        if worker is not None:
            self.free.add(worker.worker_id)
            self.request_dispatch()

    def replay(self):
        for past in sorted(self.scenario.arrivals, key=lambda t: (t.created, t.task_id)):
            if past.created > self.env.now:
                yield self.env.timeout(past.created - self.env.now)
            self.enqueue(
                self.new_task(
                    kind=past.task_type,
                    priority=past.priority,
                    created=past.created,
                    due=past.due,
                    task_id=past.task_id,
                )
            )
            self.request_dispatch()

    def arrivals(self):
        planned = []
        for day in self.scenario.days:
            weekday_batch = self.fit.opening_batch.get(day.weekday, 0.0)
            planned += [day.start] * _poisson(self.rng, weekday_batch)
            for hour in range(math.ceil(day.hours)):
                rate = self.fit.hourly_rate.get((day.weekday, hour), 0.0)
                width = min(1.0, day.hours - hour)
                for _ in range(_poisson(self.rng, rate * width)):
                    planned.append(day.start + hour + self.rng.random() * width)
        planned = sorted(at for at in planned if at >= self.scenario.start)  # a day already under way: its rest
        kinds = list(self.fit.kinds)
        weights = [k.share for k in kinds]
        for at in planned:
            if at > self.env.now:
                yield self.env.timeout(at - self.env.now)
            kind = self.rng.choices(kinds, weights)[0]
            due = at + kind.sla_hours if kind.sla_hours is not None else None
            self.enqueue(self.new_task(kind=kind.key, priority=kind.priority, created=at, due=due))
            self.request_dispatch()

    def shifts(self):
        staffing = self.scenario.staffing
        for index, day in enumerate(self.scenario.days):
            if day.start > self.env.now:
                yield self.env.timeout(day.start - self.env.now)
            if staffing is not None:
                self.present = set(staffing.get(index, ())) & set(self.by_id)
            else:
                self.present = {c.worker_id for c in self.scenario.team if self.rng.random() < c.attendance}
            self.request_dispatch()

    def sample_backlog(self):
        while True:
            self.backlog_series.append(len(self.waiting))
            yield self.env.timeout(1.0)

    def run(self) -> Outcome:
        for past in self.scenario.backlog:
            task = self.new_task(
                kind=past.task_type, priority=past.priority, created=past.created, due=past.due, task_id=past.task_id
            )
            if past.claimed is None:
                self.enqueue(task)
                continue
            task.claimed = past.claimed
            worker = self.by_id.get(past.assignee)
            if worker is not None:
                self.free.discard(worker.worker_id)
            self.env.process(self.serve(task, worker, self.rest_of_service(past, worker)))
        self.env.process(self.shifts())
        self.env.process(self.arrivals() if self.scenario.arrivals is None else self.replay())
        self.env.process(self.sample_backlog())
        self.env.run(until=self.scenario.end)
        return measure(
            [(t.created, t.due, t.claimed, t.completed) for t in self.tasks],
            start=self.scenario.start,
            end=self.scenario.end,
            backlog=self.backlog_series,
        )

    def rest_of_service(self, past: PastTask, worker: Caseworker | None) -> float:
        """A service at least as long as the time already spent on it (by rejection; a tenth of a usual one after
        that many draws)."""
        elapsed = self.scenario.start - past.claimed
        for _ in range(50):
            hours = self.service(past.task_type, worker)
            if hours > elapsed:
                return hours - elapsed
        return self.service(past.task_type, worker) / 10


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # normal approximation: Knuth's product underflows for large means
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def measure(
    tasks: Iterable[tuple[float, float | None, float | None, float | None]],
    *,
    start: float,
    end: float,
    backlog: list[int] | None = None,
) -> Outcome:
    """The figures of a period from (created, due, claimed, completed) of every task touching it: waits of the
    tasks created in it, compliance of those due in it. The same function measures history and simulation."""
    waits, judged, compliant, arrivals, completed = [], 0, 0, 0, 0
    for created, due, claimed, done in tasks:
        if start <= created < end:
            arrivals += 1
            waits.append((claimed if claimed is not None and claimed < end else end) - created)
        if due is not None and start < due <= end:
            judged += 1
            compliant += done is not None and done <= due
        if done is not None and start <= done < end:
            completed += 1
    return Outcome(
        backlog=tuple(backlog or ()),
        wait_mean=statistics.fmean(waits) if waits else None,
        wait_p50=_quantile(waits, 0.5),
        wait_p90=_quantile(waits, 0.9),
        sla_compliance=compliant / judged if judged else None,
        arrivals=arrivals,
        completed=completed,
    )


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def backlog_at(tasks: Iterable[PastTask], moment: float) -> tuple[PastTask, ...]:
    """The tasks OPEN or CLAIMED just before `moment`, as they were then (a later claim or completion forgotten);
    tasks created at `moment` itself are its arrivals, not its backlog."""
    state = []
    for task in tasks:
        if task.created >= moment or (task.completed is not None and task.completed <= moment):
            continue
        claimed = task.claimed if task.claimed is not None and task.claimed <= moment else None
        state.append(
            PastTask(
                task_id=task.task_id,
                task_type=task.task_type,
                priority=task.priority,
                created=task.created,
                due=task.due,
                claimed=claimed,
                assignee=task.assignee if claimed is not None else None,
            )
        )
    return tuple(state)


@dataclass(frozen=True)
class Bands:
    replications: int
    backlog: tuple[tuple[float, float, float], ...]  # per business hour: (p10, p50, p90)
    wait_mean: tuple[float, float, float] | None
    wait_p50: tuple[float, float, float] | None
    wait_p90: tuple[float, float, float] | None
    sla_compliance: tuple[float, float, float] | None
    arrivals: float  # median per replication
    completed: float

    def as_json(self) -> dict:
        return {
            "replications": self.replications,
            "backlog": [list(b) for b in self.backlog],
            "wait_mean": list(self.wait_mean) if self.wait_mean else None,
            "wait_p50": list(self.wait_p50) if self.wait_p50 else None,
            "wait_p90": list(self.wait_p90) if self.wait_p90 else None,
            "sla_compliance": list(self.sla_compliance) if self.sla_compliance else None,
            "arrivals": self.arrivals,
            "completed": self.completed,
        }


def _band(values: list[float]) -> tuple[float, float, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return tuple(_quantile(values, q) for q in BAND_QUANTILES)


def simulate(
    *,
    fit_: QueueFit,
    scenario: Scenario,
    replications: int = DEFAULT_REPLICATIONS,
    seed: int = DEFAULT_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> Bands:
    """`replications` independent runs (seeds seed, seed+1, …) of the scenario, summed up into bands."""
    outcomes = []
    for index in range(replications):
        outcomes.append(_Run(fit_=fit_, scenario=scenario, rng=random.Random(seed + index)).run())
        if progress is not None:
            progress(index + 1, replications)
    hours = min((len(o.backlog) for o in outcomes), default=0)
    return Bands(
        replications=replications,
        backlog=tuple(_band([o.backlog[h] for o in outcomes]) for h in range(hours)),
        wait_mean=_band([o.wait_mean for o in outcomes]),
        wait_p50=_band([o.wait_p50 for o in outcomes]),
        wait_p90=_band([o.wait_p90 for o in outcomes]),
        sla_compliance=_band([o.sla_compliance for o in outcomes]),
        arrivals=statistics.median(o.arrivals for o in outcomes) if outcomes else 0.0,
        completed=statistics.median(o.completed for o in outcomes) if outcomes else 0.0,
    )
