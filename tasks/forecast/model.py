"""SLA-risk model: for one active task, its expected completion and the probability it misses its due date.

Pure arithmetic on business hours, no database (tasks/forecast/services.py feeds it from live rates; bench/forecast.py
backtests the same functions on generated history).

Which model, and why. The queue is worked as claim-next orders it: priority first, then age, by c caseworkers in
parallel. Erlang-C (M/M/c) gives the *stationary* waiting-time distribution of a task arriving at a random moment;
but for a task that is already waiting we know more than a random arrival does: how many tasks are ahead of it in
the priority order now (k) and how many servers are free. So the model conditions on that position:

- the task starts once the k tasks ahead of it have been taken and a server frees up: with f servers free it needs
  n = k - f + 1 departures (none when k < f). While all c servers are busy, departures come at the sum of the
  servers' service rates (sum of mu_i); later arrivals of *higher* priority jump ahead, so the task itself advances
  at r = sum(mu_i) - lambda_ahead (the classic preemptive-priority correction). With exponential service the time
  for n departures is Erlang(n, r) (a gamma distribution);
- the servers working the queue now are not tomorrow's: a wait that runs past today's working hours goes on at the
  rate of the team that usually works the queue on a day (measured over the same window). Holding today's team
  until the due date flagged every task queued on a thin day as lost (bench/RESULTS.md has both figures);
- then its own service, from the service time of its task type.

Service times in casework are not exponential (lognormal, coefficient of variation around 0.5-0.8), so instead of
assuming CV = 1 the wait and the service are moment-matched to one gamma distribution using the observed CV of
service times: the time for n departures has mean n/r and variance n*cv^2/r^2 (renewal-reward; exact Erlang when
cv = 1), the own service has mean m and variance (cv_own*m)^2. A gamma with the summed mean and variance is the
standard two-moment approximation and has a closed-form tail (scipy.stats.gamma). Empirical quantiles of past
waits were the alternative; they would ignore the task's current position and staffing, which is what makes a
forecast differ from a historical average, so they are not used here. `erlang_c` stays for the queue-level figure
(probability that a new arrival waits, its mean wait) and as the stability check (rho < 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import gamma

# Below this fraction of the servers' rate left for the task (higher-priority arrivals take the rest), it is treated
# as not advancing at all: the forecast says "will breach" instead of dividing by almost nothing.
MIN_ADVANCE_SHARE = 0.05
# A task forecast to take longer than this many business hours is reported at this horizon (about a year of 40h).
MAX_FORECAST_HOURS = 2000.0
MIN_CV = 0.1


@dataclass(frozen=True)
class QueueState:
    """What the queue looks like now, on the business-hour clock.

    service_rates: one entry per caseworker with capacity working the queue now: tasks per business hour (1/mean
    service time). busy: how many of them are serving a task now. arrival_rate_ahead is filled per task by
    `task_forecast`'s caller: arrivals per business hour of tasks that would be ordered before it.
    """

    service_rates: tuple[float, ...]
    busy: int = 0
    service_cv: float = 1.0
    # Beyond today's working hours the servers are the queue's usual ones: their summed rate (None: today's hold).
    later_total_rate: float | None = None
    hours_left_today: float | None = None

    @property
    def servers(self) -> int:
        return len(self.service_rates)

    @property
    def total_rate(self) -> float:
        return float(sum(self.service_rates))


@dataclass(frozen=True)
class TaskForecast:
    expected_hours: float  # business hours from now to completion (mean)
    breach_probability: float  # P(completion after due); None-free: 0.0 when no due date is given


def erlang_c(servers: int, offered_load: float) -> float:
    """P(wait > 0) for an M/M/c queue with c servers and offered load a = lambda/mu (Erlang's C formula).

    1.0 when the queue is unstable (a >= c). Computed through the Erlang-B recursion, which stays finite for large c.
    """
    if servers <= 0 or offered_load >= servers:
        return 1.0
    if offered_load <= 0:
        return 0.0
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    rho = offered_load / servers
    return blocking / (1 - rho + rho * blocking)


def erlang_c_mean_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean wait in queue of M/M/c: C(c, a) / (c*mu - lambda); infinite when unstable."""
    if servers <= 0 or service_rate <= 0 or arrival_rate >= servers * service_rate:
        return math.inf
    return erlang_c(servers, arrival_rate / service_rate) / (servers * service_rate - arrival_rate)


def _departures_needed(*, ahead: int, servers: int, busy: int) -> int:
    free = max(0, servers - busy)
    return 0 if ahead < free else ahead - free + 1


def task_forecast(
    *,
    state: QueueState,
    ahead: int,
    arrival_rate_ahead: float,
    own_service_hours: float,
    own_service_cv: float,
    hours_to_due: float | None,
    in_service: bool = False,
) -> TaskForecast:
    """Forecast for one task: `ahead` tasks are before it in the priority order (OPEN, not yet claimed).

    `in_service`: the task is claimed; only (the rest of) its own service remains. `hours_to_due`: business hours
    from now until its due date (negative when already past); None when it has no due date.
    """
    own_mean = max(own_service_hours, 1e-6)
    own_var = (own_service_cv * own_mean) ** 2
    wait_mean = wait_var = 0.0
    if not in_service:
        n = _departures_needed(ahead=ahead, servers=state.servers, busy=state.busy)
        if n > 0:
            wait = _wait_moments(state=state, departures=n, arrival_rate_ahead=arrival_rate_ahead)
            if wait is None:
                return TaskForecast(expected_hours=MAX_FORECAST_HOURS, breach_probability=_never(hours_to_due))
            wait_mean, wait_var = wait
    mean = min(wait_mean + own_mean, MAX_FORECAST_HOURS)
    # Identical past service times (cv 0) would make a step function of the tail: keep some spread.
    variance = max(wait_var + own_var, (MIN_CV * mean) ** 2)
    if hours_to_due is None:
        return TaskForecast(expected_hours=mean, breach_probability=0.0)
    if hours_to_due <= 0:
        return TaskForecast(expected_hours=mean, breach_probability=1.0)
    shape = mean * mean / variance
    scale = variance / mean
    return TaskForecast(expected_hours=mean, breach_probability=float(gamma.sf(hours_to_due, shape, scale=scale)))


def _busy_period(departures: float, *, total_rate: float, arrival_rate_ahead: float, cv: float):
    """Mean and variance of the time for `departures` departures of the task's advance, or None if it stalls.

    A busy period of the pooled servers (one server of rate R = sum mu_i, departures of CV cv) started by n tasks,
    prolonged by the higher-priority arrivals (Poisson, lambda_ahead) it lets in: M/G/1's busy-period moments,
    mean n/(R - lambda), variance n (cv^2 + rho) / (R^2 (1 - rho)^3). Exact Erlang(n, R) when cv = 1 and lambda = 0.
    """
    advance = total_rate - arrival_rate_ahead
    if total_rate <= 0 or advance <= MIN_ADVANCE_SHARE * total_rate:
        return None
    rho = arrival_rate_ahead / total_rate
    return departures / advance, departures * (cv**2 + rho) / (total_rate**2 * (1 - rho) ** 3)


def _wait_moments(*, state: QueueState, departures: int, arrival_rate_ahead: float):
    """The wait for `departures` departures: at today's servers' rate until the day's working hours end, then at the
    rate the queue usually has (state.later_total_rate), since tomorrow's team need not be today's."""
    today = _busy_period(
        departures, total_rate=state.total_rate, arrival_rate_ahead=arrival_rate_ahead, cv=state.service_cv
    )
    if state.later_total_rate is None or state.hours_left_today is None:
        return today
    done_today = 0.0
    if today is not None:
        if today[0] <= state.hours_left_today:
            return today
        done_today = (state.total_rate - arrival_rate_ahead) * state.hours_left_today
    later = _busy_period(
        departures - done_today,
        total_rate=state.later_total_rate,
        arrival_rate_ahead=arrival_rate_ahead,
        cv=state.service_cv,
    )
    if later is None:
        return None
    first_var = 0.0
    if done_today:
        first_var = _busy_period(
            done_today, total_rate=state.total_rate, arrival_rate_ahead=arrival_rate_ahead, cv=state.service_cv
        )[1]
    return state.hours_left_today + later[0], first_var + later[1]


def _never(hours_to_due: float | None) -> float:
    return 0.0 if hours_to_due is None else 1.0


# --- a whole queue at once: the one entry point that production (services.py) and the backtest share -------------


@dataclass(frozen=True)
class QueueRates:
    """Live rates of a queue from its recent history (tasks/forecast/rates.py; the backtest computes the same).

    arrivals_by_priority: tasks created per business hour, by priority. service_hours_by_user: mean claim-to-complete
    business hours per caseworker. service_by_type: (mean hours, coefficient of variation) per task definition key.
    """

    arrivals_by_priority: dict[int, float]
    service_hours_by_user: dict[int, float]
    service_by_type: dict[str, tuple[float, float]]
    service_hours: float  # the queue's mean, for a caseworker or a task type without history
    service_cv: float
    # The summed service rate of the caseworkers who usually work the queue on a business day (the mean over the
    # window's days of the rates of those active that day); None without history.
    usual_total_rate: float | None = None

    def arrival_rate_above(self, priority: int) -> float:
        return sum(rate for p, rate in self.arrivals_by_priority.items() if p > priority)


@dataclass(frozen=True)
class ActiveTask:
    task_id: int
    priority: int
    order: tuple  # claim-next's tie-break after priority: (created_at, task_id)
    task_type: str
    hours_to_due: float | None
    assignee_id: int | None  # set when CLAIMED
    hours_in_service: float = 0.0  # business hours since claimed


def queue_state(
    *, rates: QueueRates, servers: list[int], busy_assignees: set[int], hours_left_today: float | None = None
) -> QueueState:
    """The queue now: `servers` (caseworker ids with capacity) at their measured rates, those of them holding one of
    its tasks busy, today's `hours_left_today` working hours, and the queue's usual team after that."""
    service_rates = tuple(
        1.0 / max(rates.service_hours_by_user.get(user, rates.service_hours), 1e-6) for user in servers
    )
    busy = len(set(busy_assignees) & set(servers))
    return QueueState(
        service_rates=service_rates,
        busy=min(busy, len(servers)),
        service_cv=rates.service_cv,
        later_total_rate=rates.usual_total_rate,
        hours_left_today=hours_left_today if rates.usual_total_rate else None,
    )


def waiting_forecast(
    *, state: QueueState, rates: QueueRates, ahead: int, priority: int, task_type: str, hours_to_due: float | None
) -> TaskForecast:
    """An OPEN task with `ahead` OPEN tasks before it in claim-next's order."""
    mean, cv = rates.service_by_type.get(task_type, (rates.service_hours, rates.service_cv))
    return task_forecast(
        state=state,
        ahead=ahead,
        arrival_rate_ahead=rates.arrival_rate_above(priority),
        own_service_hours=mean,
        own_service_cv=cv,
        hours_to_due=hours_to_due,
    )


def in_service_forecast(
    *, state: QueueState, rates: QueueRates, task_type: str, hours_in_service: float, hours_to_due: float | None
) -> TaskForecast:
    """A CLAIMED task: the rest of a service already under way, never less than a tenth of a typical one."""
    mean, cv = rates.service_by_type.get(task_type, (rates.service_hours, rates.service_cv))
    return task_forecast(
        state=state,
        ahead=0,
        arrival_rate_ahead=0.0,
        own_service_hours=max(mean - hours_in_service, mean / 10),
        own_service_cv=cv,
        hours_to_due=hours_to_due,
        in_service=True,
    )


def forecast_queue(
    *, rates: QueueRates, servers: list[int], tasks: list[ActiveTask], hours_left_today: float | None = None
) -> dict[int, TaskForecast]:
    """Forecasts for every active task of one queue, worked by `servers` (caseworker ids with capacity, now) for
    the `hours_left_today` working hours left today, and by the queue's usual team after that. (The beat job streams
    a queue through `queue_state`, `waiting_forecast` and `in_service_forecast` instead of holding it in a list.)"""
    state = queue_state(
        rates=rates,
        servers=servers,
        busy_assignees={t.assignee_id for t in tasks if t.assignee_id is not None},
        hours_left_today=hours_left_today,
    )
    waiting = sorted((t for t in tasks if t.assignee_id is None), key=lambda t: (-t.priority, t.order))
    forecasts: dict[int, TaskForecast] = {}
    for ahead, task in enumerate(waiting):
        forecasts[task.task_id] = waiting_forecast(
            state=state,
            rates=rates,
            ahead=ahead,
            priority=task.priority,
            task_type=task.task_type,
            hours_to_due=task.hours_to_due,
        )
    for task in tasks:
        if task.assignee_id is not None:
            forecasts[task.task_id] = in_service_forecast(
                state=state,
                rates=rates,
                task_type=task.task_type,
                hours_in_service=task.hours_in_service,
                hours_to_due=task.hours_to_due,
            )
    return forecasts
