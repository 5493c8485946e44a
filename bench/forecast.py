"""Backtest of the SLA-risk model (tasks/forecast/model.py) on generated history with known rates.

Generates weeks of queue history (tasks/forecast/history.py: weekly seasonality, varying staffing, lognormal
service per task type), then replays time: at every business hour after a warm-up it computes the queue's rates from
the history seen so far (the last RATE_WINDOW business hours: arrivals by priority, service per caseworker and per
task type), takes as servers the caseworkers active in the last business hour or holding a task, and runs
`forecast_queue` — the function the beat job runs — on the tasks open then. Afterwards:

  recall     of the tasks that breached, the share flagged at risk (p >= threshold) at least LEAD business hours
             before their due date;
  precision  of the tasks so flagged, the share that then breached;
  brier      mean (p - breached)^2 over every forecast made (calibration: 0 perfect, 0.25 a coin).

It runs in memory on the generated event stream (no database) for speed; the model code is the production code.
Target: recall >= 0.8 at precision >= 0.6 at the default threshold. Exits 1 when missed.

Then the staffing what-if (tasks/forecast/whatif.py, the code the console's job runs) on the same history: fitted
on its first WHATIF_FIT_WEEKS weeks, it simulates the rest with the staffing each day actually had (who claimed a
task that day) from the backlog left at that point, and the simulated SLA compliance and median wait (medians over
the replications) are compared with those observed. Target: within 5 percentage points and 15 % when the period's
tasks arrive as they did (the model of the queue is what is judged); the same with arrivals drawn from the fit, as
a forecast of that period would have run, is printed beside it. Exits 1 when either target is missed.
`--whatif-seeds N` repeats the what-if backtest on the histories of seeds 1..N: one period's median wait varies a
lot from one history to the next, even under the generator's own rates.

    .venv/bin/python bench/forecast.py                       # 12 weeks, seed 1
    .venv/bin/python bench/forecast.py --weeks 20 --seed 3 --record
    .venv/bin/python bench/forecast.py --whatif-seeds 10
"""

from __future__ import annotations

import argparse
import bisect
import math
import platform
import statistics
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from tasks.forecast import whatif  # noqa: E402
from tasks.forecast.history import DAYS_PER_WEEK, HOURS_PER_DAY, HOURS_PER_WEEK, History, generate  # noqa: E402
from tasks.forecast.model import ActiveTask, QueueRates, forecast_queue  # noqa: E402

RATE_WINDOW = 4 * HOURS_PER_WEEK  # four weeks of business hours
WARM_UP = 2 * HOURS_PER_WEEK
ACTIVITY_WINDOW = 1.0  # business hours: who counts as working the queue now
LEAD = 4.0  # business hours of warning the target asks for
DEFAULT_THRESHOLD = 0.5
TARGET_RECALL, TARGET_PRECISION = 0.8, 0.6
SECTION = "## `forecast.py`: SLA-risk backtest"
WHATIF_FIT_WEEKS = 4
WHATIF_MAX_COMPLIANCE_PP = 5.0
WHATIF_MAX_WAIT_ERROR = 0.15


def rates_at(history: History, now: float) -> QueueRates:
    """The rates the production query (tasks/forecast/rates.py) would compute at `now` from the history before it."""
    since = max(0.0, now - RATE_WINDOW)
    span = max(now - since, 1.0)
    arrivals: dict[int, float] = defaultdict(float)
    by_user: dict[int, list[float]] = defaultdict(list)
    by_type: dict[str, list[float]] = defaultdict(list)
    for task in history.tasks:
        if since <= task.created < now:
            arrivals[task.task_type.priority] += 1 / span
        if task.completed is not None and since <= task.completed < now:
            service = task.completed - task.claimed
            by_user[task.assignee].append(service)
            by_type[task.task_type.key].append(service)
    every = [s for services in by_type.values() for s in services] or [1.0]
    return QueueRates(
        usual_total_rate=_usual_total_rate(history, since, now, by_user),
        arrivals_by_priority=dict(arrivals),
        service_hours_by_user={user: statistics.fmean(s) for user, s in by_user.items()},
        service_by_type={key: _mean_cv(s) for key, s in by_type.items()},
        service_hours=statistics.fmean(every),
        service_cv=_mean_cv(every)[1],
    )


def _usual_total_rate(history: History, since: float, now: float, by_user: dict[int, list[float]]) -> float | None:
    """Mean over the window's whole days of the summed rates of the caseworkers active that day."""
    active_by_day: dict[int, set[int]] = defaultdict(set)
    for task in history.tasks:
        for moment in (task.claimed, task.completed):
            if moment is not None and since <= moment < now:
                active_by_day[int(moment // HOURS_PER_DAY)].add(task.assignee)
    today = int(now // HOURS_PER_DAY)
    days = [workers for day, workers in active_by_day.items() if day != today]
    if not days or not by_user:
        return None
    rate = {user: 1 / statistics.fmean(s) for user, s in by_user.items()}
    default = statistics.fmean(rate.values())
    return statistics.fmean(sum(rate.get(user, default) for user in workers) for workers in days)


def _mean_cv(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    cv = statistics.pstdev(values) / mean if len(values) > 1 and mean > 0 else 1.0
    return mean, cv


def replay(history: History) -> tuple[dict[int, list[tuple[float, float]]], float]:
    """Forecasts per task: [(checkpoint, p)] for every business hour it was active."""
    created = [t.created for t in history.tasks]
    end = history.hours
    forecasts: dict[int, list[tuple[float, float]]] = defaultdict(list)
    now = float(WARM_UP)
    while now < end:
        rates = rates_at(history, now)
        active = []
        servers = set()
        last_created = bisect.bisect_right(created, now)
        for task in history.tasks[:last_created]:
            if task.completed is not None and task.completed <= now:
                if now - ACTIVITY_WINDOW <= task.completed:
                    servers.add(task.assignee)
                continue
            claimed = task.claimed is not None and task.claimed <= now
            if claimed:
                servers.add(task.assignee)
            active.append(
                ActiveTask(
                    task_id=task.task_id,
                    priority=task.task_type.priority,
                    order=(task.created, task.task_id),
                    task_type=task.task_type.key,
                    hours_to_due=task.due - now,
                    assignee_id=task.assignee if claimed else None,
                    hours_in_service=now - task.claimed if claimed else 0.0,
                )
            )
        for task in history.tasks[:last_created]:
            if task.claimed is not None and now - ACTIVITY_WINDOW <= task.claimed <= now:
                servers.add(task.assignee)
        results = forecast_queue(
            rates=rates,
            servers=sorted(servers),
            tasks=active,
            hours_left_today=HOURS_PER_DAY - now % HOURS_PER_DAY,
        )
        for task_id, forecast in results.items():
            forecasts[task_id].append((now, forecast.breach_probability))
        now += 1.0
    return forecasts, end


def score(history: History, forecasts, end: float, threshold: float) -> dict:
    judged = [t for t in history.tasks if t.created >= WARM_UP and t.due <= end and t.task_id in forecasts]
    breached = {t.task_id for t in judged if t.breached}
    flagged = {
        t.task_id for t in judged if any(p >= threshold and t.due - at >= LEAD for at, p in forecasts[t.task_id])
    }
    hits = len(breached & flagged)
    squared = [(p - (t.task_id in breached)) ** 2 for t in judged for _, p in forecasts[t.task_id]]
    return {
        "tasks": len(judged),
        "breached": len(breached),
        "flagged": len(flagged),
        "recall": hits / len(breached) if breached else math.nan,
        "precision": hits / len(flagged) if flagged else math.nan,
        "brier": statistics.fmean(squared) if squared else math.nan,
        "forecasts": len(squared),
    }


def whatif_backtest(
    history: History, *, arrivals: str = "replayed", fit_weeks: int = WHATIF_FIT_WEEKS, replications: int = 30
) -> dict:
    """Simulate the history after its first `fit_weeks` weeks with the staffing it had, from the backlog it had
    then; simulated figures against observed ones. `arrivals`: "replayed", the period's own tasks arrive as they
    did (what is tested is the model of the queue: service fits, order, calendar, staffing); "fitted", drawn from
    the fitted arrival rates, as a what-if of that period would have run."""
    days = [
        whatif.Day(start=float(d * HOURS_PER_DAY), hours=float(HOURS_PER_DAY), weekday=d % DAYS_PER_WEEK)
        for d in range(history.weeks * DAYS_PER_WEEK)
    ]
    past = [
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
    first = fit_weeks * DAYS_PER_WEEK
    start, end = days[first].start, history.hours
    fit = whatif.fit(tasks=past, days=days, since=0.0, until=start)
    replayed = tuple(
        whatif.PastTask(task_id=t.task_id, task_type=t.task_type, priority=t.priority, created=t.created, due=t.due)
        for t in past
        if start <= t.created < end
    )
    scenario = whatif.Scenario(
        start=start,
        days=tuple(days[first:]),
        team=whatif.team_of(fit),
        backlog=whatif.backlog_at(past, start),
        staffing=whatif.observed_staffing(tasks=past, days=days[first:]),
        arrivals=replayed if arrivals == "replayed" else None,
    )
    bands = whatif.simulate(fit_=fit, scenario=scenario, replications=replications)
    observed = whatif.measure([(t.created, t.due, t.claimed, t.completed) for t in past], start=start, end=end)
    compliance_pp = 100 * (bands.sla_compliance[1] - observed.sla_compliance)
    if observed.wait_p50:
        wait_error = bands.wait_p50[1] / observed.wait_p50 - 1
    else:
        wait_error = 0.0 if not bands.wait_p50[1] else math.inf
    return {
        "arrivals_mode": arrivals,
        "period": (start, end),
        "replications": replications,
        "arrivals": (bands.arrivals, observed.arrivals),
        "compliance": (bands.sla_compliance, observed.sla_compliance),
        "wait_p50": (bands.wait_p50, observed.wait_p50),
        "wait_p90": (bands.wait_p90, observed.wait_p90),
        "compliance_pp": compliance_pp,
        "wait_error": wait_error,
        "ok": abs(compliance_pp) <= WHATIF_MAX_COMPLIANCE_PP and abs(wait_error) <= WHATIF_MAX_WAIT_ERROR,
    }


def _print_whatif(figures: dict) -> None:
    start, end = figures["period"]
    (sim_sla, obs_sla), (sim_wait, obs_wait) = figures["compliance"], figures["wait_p50"]
    sim_p90, obs_p90 = figures["wait_p90"]
    print(
        f"what-if ({figures['arrivals_mode']} arrivals): business hours {start:g}-{end:g} with the observed staffing, "
        f"{figures['replications']} replications; arrivals {figures['arrivals'][0]:g} simulated (median), "
        f"{figures['arrivals'][1]} observed"
    )
    print(
        f"  SLA compliance simulated {100 * sim_sla[1]:.1f}% (p10-p90 {100 * sim_sla[0]:.1f}-{100 * sim_sla[2]:.1f}) "
        f"observed {100 * obs_sla:.1f}%: {figures['compliance_pp']:+.1f} pp"
    )
    print(
        f"  median wait simulated {sim_wait[1]:.3f} h (p10-p90 {sim_wait[0]:.3f}-{sim_wait[2]:.3f}) observed "
        f"{obs_wait:.3f} h: {100 * figures['wait_error']:+.1f}%; p90 wait {sim_p90[1]:.2f} h vs {obs_p90:.2f} h"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    parser.add_argument(
        "--whatif-seeds",
        type=int,
        default=0,
        metavar="N",
        help="also run the what-if backtest on the histories of seeds 1..N (how much its figures vary)",
    )
    args = parser.parse_args()

    history = generate(weeks=args.weeks, seed=args.seed)
    forecasts, end = replay(history)
    main_figures = score(history, forecasts, end, args.threshold)
    print(f"history: {args.weeks} weeks, seed {args.seed}, {len(history.tasks)} tasks")
    print(
        f"judged {main_figures['tasks']} tasks, {main_figures['breached']} breached, "
        f"{main_figures['forecasts']} forecasts"
    )
    rows = []
    for threshold in sorted({0.3, 0.4, 0.5, 0.6, 0.7, args.threshold}):
        figures = score(history, forecasts, end, threshold)
        rows.append((threshold, figures))
        print(
            f"threshold {threshold:.2f}: recall {figures['recall']:.3f} precision {figures['precision']:.3f} "
            f"flagged {figures['flagged']}"
        )
    print(f"brier {main_figures['brier']:.4f}")
    ok = main_figures["recall"] >= TARGET_RECALL and main_figures["precision"] >= TARGET_PRECISION
    print(
        f"target recall >= {TARGET_RECALL} at precision >= {TARGET_PRECISION} (threshold {args.threshold}): "
        f"{'met' if ok else 'MISSED'}"
    )
    whatif_figures = whatif_backtest(history)
    _print_whatif(whatif_figures)
    print(
        f"what-if target (replayed arrivals: compliance within {WHATIF_MAX_COMPLIANCE_PP:g} pp, median wait within "
        f"{100 * WHATIF_MAX_WAIT_ERROR:g} %): {'met' if whatif_figures['ok'] else 'MISSED'}"
    )
    forecast_figures = whatif_backtest(history, arrivals="fitted")
    _print_whatif(forecast_figures)
    spread = []
    for seed in range(1, args.whatif_seeds + 1):
        other = generate(weeks=args.weeks, seed=seed)
        spread.append((seed, whatif_backtest(other), whatif_backtest(other, arrivals="fitted")))
        for figures in spread[-1][1:]:
            print(
                f"what-if seed {seed} ({figures['arrivals_mode']}): compliance {figures['compliance_pp']:+.1f} pp, "
                f"median wait {100 * figures['wait_error']:+.1f}%: {'met' if figures['ok'] else 'missed'}"
            )
    if args.record:
        _record(args, history, main_figures, rows, ok)
        _record_whatif(args, [whatif_figures, forecast_figures], spread)
    return 0 if ok and whatif_figures["ok"] else 1


def _record(args, history, figures, rows, ok) -> None:
    lines = [
        "",
        f"### SLA-risk backtest ({datetime.now(UTC):%Y-%m-%d}, {platform.node()}, "
        f"`bench/forecast.py --weeks {args.weeks} --seed {args.seed}`)",
        "",
        f"{len(history.tasks)} generated tasks, {figures['tasks']} judged, {figures['breached']} breached, "
        f"{figures['forecasts']} hourly forecasts; flag = p >= threshold at least {LEAD:g} business hours before due.",
        "",
        "| threshold | recall | precision | flagged |",
        "|---|---|---|---|",
        *(f"| {t:.2f} | {f['recall']:.3f} | {f['precision']:.3f} | {f['flagged']} |" for t, f in rows),
        "",
        f"Brier score {figures['brier']:.4f}; target (recall >= {TARGET_RECALL} at precision >= "
        f"{TARGET_PRECISION}, threshold {args.threshold}): {'met' if ok else 'missed'}.",
        "",
    ]
    path = PROJECT_DIR / "bench" / "RESULTS.md"
    if SECTION not in path.read_text():
        lines[0:0] = ["", SECTION]
    with open(path, "a") as results:
        results.write("\n".join(lines))


def _record_whatif(args, runs, spread) -> None:
    start, end = runs[0]["period"]

    def row(figures) -> str:
        (sim_sla, obs_sla), (sim_wait, obs_wait) = figures["compliance"], figures["wait_p50"]
        sim_p90, obs_p90 = figures["wait_p90"]
        return (
            f"| {figures['arrivals_mode']} | {100 * sim_sla[1]:.1f}% ({100 * sim_sla[0]:.1f}-{100 * sim_sla[2]:.1f}) "
            f"/ {100 * obs_sla:.1f}% | {figures['compliance_pp']:+.1f} pp | {sim_wait[1]:.3f} ({sim_wait[0]:.3f}-"
            f"{sim_wait[2]:.3f}) / {obs_wait:.3f} | {100 * figures['wait_error']:+.1f}% | {sim_p90[1]:.2f} / "
            f"{obs_p90:.2f} | {'met' if figures['ok'] else 'missed'} |"
        )

    header = [
        "| arrivals | SLA compliance sim (p10-p90) / obs | difference | median wait h sim (p10-p90) / obs | "
        "difference | p90 wait h sim / obs | target |",
        "|---|---|---|---|---|---|---|",
    ]
    lines = [
        "",
        f"### Staffing what-if backtest ({datetime.now(UTC):%Y-%m-%d}, {platform.node()}, "
        f"`bench/forecast.py --weeks {args.weeks} --seed {args.seed} --whatif-seeds {args.whatif_seeds}`)",
        "",
        f"Fitted on the first {WHATIF_FIT_WEEKS} weeks; business hours {start:g}-{end:g} simulated with the staffing "
        f"observed each day from the backlog then, {runs[0]['replications']} replications (medians over them). "
        f"Target: within {WHATIF_MAX_COMPLIANCE_PP:g} pp and {100 * WHATIF_MAX_WAIT_ERROR:g} % with the period's "
        "arrivals replayed; with fitted arrivals, as a what-if of the period would have run.",
        "",
        *header,
        *(row(figures) for figures in runs),
        "",
    ]
    if spread:
        lines += [
            f"The same on the histories of seeds 1-{len(spread)}:",
            "",
            "| seed " + header[0],
            "|---" + header[1],
            *(f"| {seed} " + row(figures) for seed, *both in spread for figures in both),
            "",
        ]
    with open(PROJECT_DIR / "bench" / "RESULTS.md", "a") as results:
        results.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
