"""Staffing what-if runs: a supervisor asks about one queue, a Celery job simulates it (tasks/forecast/whatif.py).

- `whatif_run_request` (the console's form): checks the caller supervises the queue, validates the scenario, stores
  a QUEUED run and sends the job after commit;
- `whatif_run_execute` (the job, system scope): reads the queue's last FIT_WINDOW of tasks and its active ones,
  puts them on the business-hour clock of the queue's calendar (round the clock without one), fits, simulates the
  scenario and the queue as it is (the baseline the chart compares with), writing progress on the run row as
  replications finish, and stores the bands as the result;
- selectors for the page: a queue's runs, one run, both checked against the caller's supervised queues.

Escalation rules are applied as the simulation can (tasks/forecast/whatif.py): their trigger hours are counted as
business hours, where the sweep counts wall-clock hours past a due date.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from celery import current_app
from django.db import transaction
from django.utils import timezone

from core.errors import InvalidInput, NotFound
from core.jobs import TRANSIENT
from entitlements.access import may, queues_for
from entitlements.models import Capability
from entitlements.row_scope import acting_for_user
from queues.calendar import business_hours_between
from queues.escalation import parse_rules
from queues.models import WorkflowQueue
from queues.selectors import business_calendar_for

from ..models import TaskStatus, WhatIfRun, WhatIfStatus, WorkflowTask
from . import whatif

logger = logging.getLogger(__name__)

JOB_NAME = "workflow.run_staffing_whatif"
FIT_WINDOW = timedelta(weeks=4)
DEFAULT_HORIZON_DAYS = 14
MAX_HORIZON_DAYS = 56
MAX_DELTA = 50  # caseworkers more or fewer
MAX_SPECIALISTS = 50
REPLICATIONS = whatif.DEFAULT_REPLICATIONS
# The most tasks of a queue the fit reads (the newest): enough for stable rates, bounded work on a huge queue.
MAX_FIT_TASKS = 50_000
RUNS_LISTED = 20
MAX_ERROR_LENGTH = 500


def _require_supervisor(*, user, queue_name: str) -> None:
    """Outside the caller's supervised queues a queue does not exist for them (404, as for tasks)."""
    if not may(user=user, capability=Capability.SUPERVISE, queue_name=queue_name):
        raise NotFound(f"queue {queue_name} not found")


def _clean_parameters(*, queue_name: str, delta, horizon_days, specialists) -> dict:
    problems: dict[str, list[str]] = {}
    if isinstance(delta, bool) or not isinstance(delta, int) or not -MAX_DELTA <= delta <= MAX_DELTA:
        problems["delta"] = [f"A whole number from -{MAX_DELTA} to {MAX_DELTA}."]
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        problems["horizon_days"] = [f"A whole number of days from 1 to {MAX_HORIZON_DAYS}."]
    specialists = specialists or {}
    if not isinstance(specialists, dict) or not all(
        isinstance(key, str) and key and isinstance(count, int) and not isinstance(count, bool) and count >= 0
        for key, count in specialists.items()
    ):
        problems["specialists"] = ["Task types, each with a whole number of caseworkers (0 or more)."]
    elif sum(specialists.values()) > MAX_SPECIALISTS:
        problems["specialists"] = [f"At most {MAX_SPECIALISTS} specialists in all."]
    elif specialists:
        known = set(
            WorkflowTask.objects.filter(
                queue_id=queue_name,
                task_definition_key__in=list(specialists),
                created_at__gte=timezone.now() - FIT_WINDOW,
            )
            .values_list("task_definition_key", flat=True)
            .distinct()
        )
        unknown = sorted(set(specialists) - known)
        if unknown:
            problems["specialists"] = [f"No task of type {', '.join(unknown)} in the queue's last four weeks."]
    if problems:
        raise InvalidInput("invalid what-if scenario", fields=problems)
    return {
        "delta": delta,
        "horizon_days": horizon_days,
        "specialists": {key: count for key, count in sorted(specialists.items()) if count},
    }


@transaction.atomic
@acting_for_user
def whatif_run_request(
    *, user, queue_name: str, delta: int = 0, horizon_days: int = DEFAULT_HORIZON_DAYS, specialists=None
) -> WhatIfRun:
    """Ask for a what-if of a queue the caller supervises: `delta` caseworkers more (or fewer), `specialists` more
    who take only the named task types, over the next `horizon_days` days. The job runs after commit."""
    _require_supervisor(user=user, queue_name=queue_name)
    parameters = _clean_parameters(
        queue_name=queue_name, delta=delta, horizon_days=horizon_days, specialists=specialists
    )
    run = WhatIfRun.objects.create(queue_name=queue_name, requested_by=user, parameters=parameters)
    transaction.on_commit(lambda: current_app.send_task(JOB_NAME, args=[run.pk]))
    return run


# --- selectors --------------------------------------------------------------------------------------------------


@acting_for_user
def whatif_runs_for_queue(*, user, queue_name: str, limit: int = RUNS_LISTED) -> list[WhatIfRun]:
    _require_supervisor(user=user, queue_name=queue_name)
    runs = WhatIfRun.objects.filter(queue_name=queue_name).select_related("requested_by")
    return list(runs.order_by("-created_at", "-run_id")[:limit])


@acting_for_user
def whatif_run_for_user(*, user, queue_name: str, run_id: int) -> WhatIfRun:
    _require_supervisor(user=user, queue_name=queue_name)
    run = WhatIfRun.objects.filter(queue_name=queue_name, pk=run_id).first()
    if run is None:
        raise NotFound(f"what-if run {run_id} not found")
    return run


def whatif_queues_for(*, user):
    """The queues whose what-if the caller may run: those they supervise now."""
    return queues_for(user=user, capability=Capability.SUPERVISE).order_by("queue_name")


# --- the job ----------------------------------------------------------------------------------------------------


class _Clock:
    """Business hours since `origin` on the queue's calendar (round the clock without one)."""

    def __init__(self, *, origin: datetime, calendar):
        self.origin, self.calendar = origin, calendar

    def __call__(self, moment: datetime | None) -> float | None:
        return None if moment is None else business_hours_between(self.origin, moment, self.calendar)

    def days(self, *, until: datetime) -> list[whatif.Day]:
        """The working days from the origin's date to `until`'s, on this clock."""
        zone = self.calendar.time_zone if self.calendar is not None else timezone.get_current_timezone()
        day = self.origin.astimezone(zone).date()
        last = until.astimezone(zone).date()
        days = []
        while day <= last:
            midnight = datetime.combine(day, time(), tzinfo=zone)
            following = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
            start, end = self(midnight), self(following)
            if end - start > 0:
                days.append(whatif.Day(start=start, hours=end - start, weekday=day.weekday()))
            day += timedelta(days=1)
        return days


def _past_tasks(*, queue_name: str, since: datetime, clock: _Clock) -> list[whatif.PastTask]:
    rows = (
        WorkflowTask.objects.filter(queue_id=queue_name, created_at__gte=since)
        .filter(status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED, TaskStatus.COMPLETED])
        .order_by("-created_at")
        .values_list(
            "task_id", "task_definition_key", "name", "priority", "created_at", "due_date", "claimed_at",
            "completed_at", "assignee_id", "status",
        )[:MAX_FIT_TASKS]
    )  # fmt: skip
    older_active = WorkflowTask.objects.filter(
        queue_id=queue_name, created_at__lt=since, status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED]
    ).values_list(
        "task_id", "task_definition_key", "name", "priority", "created_at", "due_date", "claimed_at",
        "completed_at", "assignee_id", "status",
    )  # fmt: skip
    tasks = []
    for task_id, key, name, priority, created, due, claimed, completed, assignee, status in [*rows, *older_active]:
        claimed = claimed if status != TaskStatus.OPEN else None
        tasks.append(
            whatif.PastTask(
                task_id=task_id,
                task_type=key or name,
                priority=priority,
                created=clock(created),
                due=clock(due),
                claimed=clock(claimed),
                completed=clock(completed) if status == TaskStatus.COMPLETED else None,
                assignee=assignee if claimed is not None else None,
            )
        )
    return tasks


def _escalations(queue: WorkflowQueue) -> tuple[whatif.Escalation, ...]:
    try:
        levels = parse_rules(queue.escalation_rules or [])
    except InvalidInput:
        return ()
    return tuple(
        whatif.Escalation(trigger=level.trigger, hours=float(level.hours), raise_priority=level.raise_priority)
        for level in levels
    )


def _update(run_id: int, **fields) -> None:
    with transaction.atomic():
        WhatIfRun.objects.filter(pk=run_id).update(**fields)


def whatif_run_execute(*, run_id: int, now: datetime | None = None) -> WhatIfRun | None:
    """The job's work (system scope): simulate a QUEUED run, reporting progress on its row. A run already started
    or finished is left alone (a redelivered message), and None is returned for a run that does not exist. A
    failure is kept on the row (FAILED, with the error), except a transient database error, which puts the run
    back in the queue for the job's retry."""
    with transaction.atomic():
        claimed = WhatIfRun.objects.filter(pk=run_id, status=WhatIfStatus.QUEUED).update(
            status=WhatIfStatus.RUNNING, started_at=timezone.now()
        )
    run = WhatIfRun.objects.filter(pk=run_id).first()
    if not claimed or run is None:
        return run
    try:
        result = _simulate(run, now=now or timezone.now())
    except TRANSIENT:
        # The job retries (core/jobs.py): the run waits for it, as asked.
        _update(run_id, status=WhatIfStatus.QUEUED, progress=0, started_at=None)
        raise
    except Exception as exc:
        logger.exception("what-if run %s failed", run_id)
        _update(
            run_id,
            status=WhatIfStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH],
            finished_at=timezone.now(),
        )
        raise
    _update(run_id, status=WhatIfStatus.DONE, progress=100, result=result, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def _simulate(run: WhatIfRun, *, now: datetime) -> dict:
    queue = WorkflowQueue.objects.get(queue_name=run.queue_name)
    calendar = business_calendar_for(queue=queue)
    origin = now - FIT_WINDOW
    clock = _Clock(origin=origin, calendar=calendar)
    horizon_end = now + timedelta(days=run.parameters["horizon_days"])
    days = clock.days(until=horizon_end)
    start, end = clock(now), clock(horizon_end)
    past = _past_tasks(queue_name=queue.queue_name, since=origin, clock=clock)
    fit = whatif.fit(tasks=past, days=days, since=0.0, until=start)
    horizon = tuple(d for d in days if d.start + d.hours > start and d.start < end)
    backlog = tuple(t for t in past if t.completed is None)  # the queue's OPEN and CLAIMED tasks now
    parameters = run.parameters
    scenario_team = whatif.team_of(fit, delta=parameters["delta"], specialists=parameters.get("specialists"))
    baseline_team = whatif.team_of(fit)
    is_baseline = scenario_team == baseline_team
    steps = REPLICATIONS * (1 if is_baseline else 2)
    done = [0]

    def progress(_finished: int, _total: int) -> None:
        done[0] += 1
        _update(run.pk, progress=min(99, round(100 * done[0] / steps)))

    def bands_of(team) -> dict:
        scenario = whatif.Scenario(
            start=start, days=horizon, team=team, backlog=backlog, escalations=_escalations(queue), until=end
        )
        return whatif.simulate(fit_=fit, scenario=scenario, replications=REPLICATIONS, progress=progress).as_json()

    scenario_bands = bands_of(scenario_team)
    return {
        "start": now.isoformat(),
        "hours": end - start,
        "team": {"observed": len(baseline_team), "scenario": len(scenario_team)},
        "backlog_now": len(backlog),
        "day_starts": [d.start - start for d in horizon if d.start >= start],
        "scenario": scenario_bands,
        "baseline": scenario_bands if is_baseline else bands_of(baseline_team),
    }
