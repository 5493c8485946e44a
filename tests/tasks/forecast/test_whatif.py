"""The staffing what-if simulation (tasks/forecast/whatif.py) on cases with known answers."""

from __future__ import annotations

import math

import pytest

from tasks.forecast import whatif
from tasks.forecast.history import HOURS_PER_DAY, TASK_TYPES, generate

ROUND_THE_CLOCK = 24.0


def days_of(count: int, *, hours: float = HOURS_PER_DAY, first: int = 0) -> tuple[whatif.Day, ...]:
    return tuple(whatif.Day(start=d * hours, hours=hours, weekday=d % 7) for d in range(first, first + count))


def fit_of(*, rate: float = 0.0, mu: float = 0.0, sigma: float = 0.5, sla_hours: float | None = 8.0, hours: int = 24):
    """One task type arriving at `rate` an hour through every hour of every weekday, lognormal(mu, sigma) service."""
    return whatif.QueueFit(
        kinds=(whatif.TaskKind("work", 50, 1.0, sla_hours, mu, sigma),),
        opening_batch={},
        hourly_rate={(weekday, hour): rate for weekday in range(7) for hour in range(hours)},
        speed={1: 1.0},
        attendance={1: 1.0},
        days=0,
    )


def replayed(times: list[float], *, priority: int = 50, kind: str = "work", due_in: float = 100.0):
    return tuple(
        whatif.PastTask(task_id=i + 1, task_type=kind, priority=priority, created=t, due=t + due_in)
        for i, t in enumerate(times)
    )


def test_no_arrivals_and_no_backlog_leave_the_queue_empty():
    scenario = whatif.Scenario(start=0.0, days=days_of(10), team=(whatif.Caseworker(1),))
    bands = whatif.simulate(fit_=fit_of(rate=0.0), scenario=scenario, replications=3)
    assert len(bands.backlog) == 80
    assert all(band == (0, 0, 0) for band in bands.backlog)
    assert bands.wait_p50 is None and bands.sla_compliance is None and bands.arrivals == 0


def test_a_caseworker_faster_than_the_arrivals_leaves_no_one_waiting():
    # Arrivals every hour, a fixed half-hour service (sigma 0): each task is claimed the moment it arrives.
    scenario = whatif.Scenario(
        start=0.0,
        days=days_of(2),
        team=(whatif.Caseworker(1),),
        arrivals=replayed([float(h) + 0.25 for h in range(15)], due_in=1.0),
    )
    bands = whatif.simulate(fit_=fit_of(mu=math.log(0.5), sigma=0.0), scenario=scenario, replications=2)
    assert bands.wait_p90 == (0.0, 0.0, 0.0)
    assert bands.sla_compliance == (1.0, 1.0, 1.0)
    assert bands.completed == 15


def test_a_caseworker_slower_than_the_arrivals_builds_a_queue_that_grows_as_computed():
    # A task every half hour, one hour of service each: task k (from 0) starts at hour k, so it waits k/2 hours.
    times = [0.5 * k for k in range(16)]
    scenario = whatif.Scenario(
        start=0.0, days=days_of(1, hours=ROUND_THE_CLOCK), team=(whatif.Caseworker(1),), arrivals=replayed(times)
    )
    bands = whatif.simulate(fit_=fit_of(mu=0.0, sigma=0.0), scenario=scenario, replications=1)
    waits = [0.5 * k for k in range(16)]
    assert bands.wait_mean[1] == pytest.approx(sum(waits) / 16)
    assert bands.wait_p50[1] == pytest.approx((3.5 + 4.0) / 2)
    # At hour 4 tasks 0-3 are done or in service (task 4 starts at 4.0), tasks 5-8 have arrived: 4 waiting.
    assert bands.backlog[4][1] == 4


def test_one_caseworker_with_poisson_arrivals_waits_as_pollaczek_khinchine_says():
    # M/G/1 round the clock: lambda 0.5/h, lognormal service (median 1 h, sigma 0.5): rho 0.57,
    # mean wait lambda E[S^2] / (2 (1 - rho)).
    rate, sigma = 0.5, 0.5
    first, second = math.exp(sigma**2 / 2), math.exp(2 * sigma**2)
    expected = rate * second / (2 * (1 - rate * first))
    scenario = whatif.Scenario(start=0.0, days=days_of(120, hours=ROUND_THE_CLOCK), team=(whatif.Caseworker(1),))
    bands = whatif.simulate(fit_=fit_of(rate=rate, sigma=sigma), scenario=scenario, replications=8, seed=3)
    assert bands.arrivals == pytest.approx(rate * 120 * 24, rel=0.05)
    assert bands.wait_mean[1] == pytest.approx(expected, rel=0.12)


def test_more_caseworkers_never_make_the_queue_worse():
    history = generate(weeks=6, seed=2)
    past = past_of(history)
    days = [whatif.Day(start=d * 8.0, hours=8.0, weekday=d % 5) for d in range(30)]
    fit = whatif.fit(tasks=past, days=days, since=0.0, until=160.0)
    horizon = tuple(days[20:])
    outcome = {}
    for delta in (-2, 0, 2):
        scenario = whatif.Scenario(
            start=160.0, days=horizon, team=whatif.team_of(fit, delta=delta), backlog=whatif.backlog_at(past, 160.0)
        )
        outcome[delta] = whatif.simulate(fit_=fit, scenario=scenario, replications=10)
    assert outcome[2].wait_p90[1] <= outcome[0].wait_p90[1] <= outcome[-2].wait_p90[1]
    assert outcome[2].sla_compliance[1] >= outcome[0].sla_compliance[1] >= outcome[-2].sla_compliance[1]
    assert outcome[-2].wait_p90[1] > outcome[2].wait_p90[1]


def test_specialists_take_only_their_task_type():
    fit = whatif.QueueFit(
        kinds=(whatif.TaskKind("a", 50, 0.5, 8.0, 0.0, 0.0), whatif.TaskKind("b", 50, 0.5, 8.0, 0.0, 0.0)),
        opening_batch={}, hourly_rate={}, speed={}, attendance={}, days=0,
    )  # fmt: skip
    tasks = replayed([0.0, 0.1], kind="a") + tuple(
        whatif.PastTask(task_id=10 + i, task_type="b", priority=50, created=0.2 + i / 10, due=100.0) for i in range(2)
    )
    specialist = whatif.Caseworker(1, task_types=frozenset(["a"]))
    scenario = whatif.Scenario(start=0.0, days=days_of(1), team=(specialist,), arrivals=tasks)
    bands = whatif.simulate(fit_=fit, scenario=scenario, replications=1)
    assert bands.completed == 2  # the two of type a, one hour each; type b waits for nobody
    assert bands.backlog[-1][1] == 2


def test_an_escalation_raises_an_overdue_task_above_newer_ones():
    fit = fit_of(mu=0.0, sigma=0.0)
    low = whatif.PastTask(task_id=1, task_type="work", priority=10, created=0.0, due=0.5)
    high = tuple(
        whatif.PastTask(task_id=2 + i, task_type="work", priority=50, created=0.1 * (i + 1), due=50.0) for i in range(3)
    )
    busy = whatif.PastTask(
        task_id=99, task_type="work", priority=50, created=0.0, due=50.0, claimed=0.0, assignee=1
    )  # holds the caseworker for the first hour
    escalate = (whatif.Escalation(trigger="overdue", hours=0.0, raise_priority=60),)

    def low_done(escalations):
        scenario = whatif.Scenario(
            start=0.0,
            days=days_of(1),
            team=(whatif.Caseworker(1),),
            backlog=(busy,),
            arrivals=(low, *high),
            escalations=escalations,
        )
        run = whatif._Run(fit_=fit, scenario=scenario, rng=__import__("random").Random(1))
        run.run()
        return next(t for t in run.tasks if t.task_id == 1).claimed

    assert low_done(()) > low_done(escalate)


def test_the_backlog_at_a_moment_forgets_what_happened_later_and_leaves_that_moments_arrivals_out():
    tasks = [
        whatif.PastTask(1, "work", 50, created=1.0, due=9.0, claimed=3.0, completed=4.0, assignee=1),
        whatif.PastTask(2, "work", 50, created=1.0, due=9.0, claimed=1.5, completed=1.8, assignee=1),
        whatif.PastTask(3, "work", 50, created=2.0, due=9.0),
    ]
    state = {t.task_id: t for t in whatif.backlog_at(tasks, 2.0)}
    assert set(state) == {1}  # 2 is done by then, 3 arrives at that very moment
    assert state[1].claimed is None and state[1].assignee is None


def past_of(history):
    return [
        whatif.PastTask(
            task_id=t.task_id,
            task_type=t.task_type.key,
            priority=t.task_type.priority,
            created=t.created,
            due=t.due,
            claimed=t.claimed,
            completed=t.completed,
            assignee=t.assignee,
        )
        for t in history.tasks
    ]


def test_the_fit_recovers_the_generators_rates():
    history = generate(weeks=12, seed=4)
    days = [whatif.Day(start=d * 8.0, hours=8.0, weekday=d % 5) for d in range(60)]
    fit = whatif.fit(tasks=past_of(history), days=days, since=0.0, until=480.0)
    kinds = fit.kind_by_key
    for kind in TASK_TYPES:
        assert math.exp(kinds[kind.key].service_mu) == pytest.approx(kind.median_hours, rel=0.15)
        assert kinds[kind.key].service_sigma == pytest.approx(kind.sigma, rel=0.15)
        assert kinds[kind.key].sla_hours == pytest.approx(kind.sla_hours)
        assert kinds[kind.key].share == pytest.approx(kind.weight, abs=0.03)
    assert fit.daily_arrivals(0) > fit.daily_arrivals(4)  # Monday heaviest, Friday lightest
    assert sum(fit.daily_arrivals(d) for d in range(5)) / 5 == pytest.approx(36, rel=0.08)
    # The speed factors order the caseworkers as the generator's do.
    ranked = sorted(fit.speed, key=fit.speed.get)
    truth = sorted(history.speed, key=history.speed.get)
    assert ranked[0] == truth[0] and ranked[-1] == truth[-1]


def test_progress_is_reported_after_each_replication():
    scenario = whatif.Scenario(start=0.0, days=days_of(2), team=(whatif.Caseworker(1),))
    reported = []
    whatif.simulate(fit_=fit_of(rate=1.0), scenario=scenario, replications=4, progress=lambda *a: reported.append(a))
    assert reported == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_batch_arriving_at_the_opening_is_taken_in_priority_order_not_in_arrival_order():
    batch = (
        whatif.PastTask(task_id=1, task_type="work", priority=10, created=8.0, due=50.0),
        whatif.PastTask(task_id=2, task_type="work", priority=90, created=8.0, due=50.0),
    )
    scenario = whatif.Scenario(
        start=0.0,
        days=days_of(2),
        team=(whatif.Caseworker(1), whatif.Caseworker(2)),
        staffing={0: frozenset(), 1: frozenset([1])},  # nobody on the first day, one caseworker on the second
        arrivals=batch,
    )
    run = whatif._Run(fit_=fit_of(mu=0.0, sigma=0.0), scenario=scenario, rng=__import__("random").Random(1))
    run.run()
    claimed = {t.task_id: t.claimed for t in run.tasks}
    assert claimed == {2: 8.0, 1: 9.0}
