"""Risk-driven priority: the points a waiting task gains with its wait and its SLA-breach risk, in queues that age.

In a queue with aging on, each OPEN task's `priority_boost` becomes

    min(MAX_BOOST, priority_weight × (whole AGING_HOURS_PER_POINT business hours waited
                                      + round(RISK_POINTS × breach probability)))

and `effective_priority` (priority + boost, a generated column) is what claim-next orders by. The breach
probability is the SLA-risk job's latest forecast (flowable.task_risks; none yet counts as 0), so the beat job
ages right after it forecasts (tasks/jobs.py: forecast_sla_risk).

A boost never falls while its task waits: the forecast is made in claim-next's order, so a boost that moves a
task up makes its risk fall, and a boost following the risk down would push it back, swinging between runs.
Lowering the weight therefore bounds only the points still to be earned. In a queue with aging off every OPEN
task's boost is 0 (turning aging off clears them on the next run); a task moved to another queue starts at 0.

Set-based: per queue, one statement per CHUNK_SIZE OPEN tasks (keyset on task_id over the partial index of active
tasks), which computes every boost in SQL and writes only the rows whose boost changes, each short and skipping
rows a claim holds (that task is being claimed: its boost no longer matters). Ages are counted in the queue's
business calendar without a calendar in SQL: Python finds the instants at which a task created then has waited
k × AGING_HOURS_PER_POINT business hours, and SQL places each task's created_at among them (width_bucket).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from queues.calendar import business_hours_between
from queues.models import WorkflowQueue
from queues.selectors import business_calendar_for

# Business hours of waiting worth one point, times the queue's priority_weight.
AGING_HOURS_PER_POINT = 4.0
# Points at breach probability 1, times the queue's priority_weight.
RISK_POINTS = 10
# The most points aging adds to a task's priority.
MAX_BOOST = 20
CHUNK_SIZE = 2000
# How far back the search for an age's starting instant goes; older tasks have long reached MAX_BOOST.
SEARCH_LIMIT = timedelta(days=3660)
SEARCH_PRECISION = timedelta(seconds=1)

AGE_CHUNK_SQL = """
WITH candidates AS (
    SELECT t.task_id, t.priority_boost AS old_boost,
           CASE WHEN %(aging)s
                THEN least(%(max_boost)s, greatest(t.priority_boost, %(weight)s * (
                         (%(steps)s - width_bucket(t.created_at, %(thresholds)s::timestamptz[]))
                         + round(%(risk_points)s * coalesce(r.breach_probability, 0))::integer)))
                ELSE 0 END AS boost
      FROM flowable.workflow_tasks t
      LEFT JOIN flowable.task_risks r ON r.task_id = t.task_id
     WHERE t.queue_name = %(queue)s AND t.status = 'OPEN' AND t.task_id > %(after)s
     ORDER BY t.task_id
     LIMIT %(limit)s
), changed AS (
    SELECT t.task_id, c.boost
      FROM candidates c JOIN flowable.workflow_tasks t ON t.task_id = c.task_id
     WHERE c.boost <> c.old_boost AND t.status = 'OPEN' AND t.queue_name = %(queue)s
       FOR UPDATE OF t SKIP LOCKED
), updated AS (
    UPDATE flowable.workflow_tasks t
       SET priority_boost = changed.boost
      FROM changed
     WHERE t.task_id = changed.task_id
    RETURNING 1
)
SELECT (SELECT max(task_id) FROM candidates), (SELECT count(*) FROM candidates), (SELECT count(*) FROM updated)
"""


@dataclass(frozen=True)
class AgingRun:
    queues: int
    tasks: int  # OPEN tasks read
    changed: int  # boosts written


def age_thresholds(*, calendar, now: datetime, steps: int) -> list[datetime]:
    """The instants, oldest first, at which a task created then has waited steps × AGING_HOURS_PER_POINT, ...,
    1 × AGING_HOURS_PER_POINT business hours by `now`: the latest instant with at least that much work time to now."""
    return [_start_of(hours=k * AGING_HOURS_PER_POINT, calendar=calendar, now=now) for k in range(steps, 0, -1)]


def _start_of(*, hours: float, calendar, now: datetime) -> datetime:
    if calendar is None:
        return now - timedelta(hours=hours)
    # Work time up to now only grows as the start moves back: search the wall-clock distance, doubling then halving.
    near, far = timedelta(0), timedelta(hours=hours)
    while business_hours_between(now - far, now, calendar) < hours:
        if far >= SEARCH_LIMIT:
            return now - SEARCH_LIMIT
        near, far = far, min(far * 2, SEARCH_LIMIT)
    while far - near > SEARCH_PRECISION:
        middle = near + (far - near) / 2
        if business_hours_between(now - middle, now, calendar) >= hours:
            far = middle
        else:
            near = middle
    return now - far


def _queue_age(queue: WorkflowQueue, *, now: datetime) -> tuple[int, int]:
    """Bring one queue's OPEN tasks' boosts up to date, a chunk at a time; (tasks read, boosts written)."""
    # Past MAX_BOOST a weight changes nothing (one point reaches the cap), and SQL's integers stay far from overflow.
    weight = min(queue.priority_weight, MAX_BOOST) if queue.aging_enabled else 0
    steps = math.ceil(MAX_BOOST / weight) if weight else 0
    thresholds = age_thresholds(calendar=business_calendar_for(queue=queue), now=now, steps=steps) if steps else []
    params = {
        "aging": bool(weight),
        "queue": queue.queue_name,
        "weight": weight,
        "steps": steps,
        # width_bucket needs at least one threshold; with aging off the CASE never reads it.
        "thresholds": thresholds or [now],
        "risk_points": RISK_POINTS,
        "max_boost": MAX_BOOST,
        "limit": CHUNK_SIZE,
    }
    read = written = 0
    after = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(AGE_CHUNK_SQL, {**params, "after": after})
            last, chunk, changed = cursor.fetchone()
        read += chunk
        written += changed
        if last is None or chunk < CHUNK_SIZE:
            return read, written
        after = last


def task_priorities_age(*, queue_name: str | None = None, now: datetime | None = None) -> AgingRun:
    """Recompute the aging boost of every OPEN task (of one queue, or of all), writing only those that change."""
    now = now or timezone.now()
    queues = WorkflowQueue.objects.all()
    if queue_name:
        queues = queues.filter(queue_name=queue_name)
    read = written = count = 0
    for queue in queues:
        tasks, changed = _queue_age(queue, now=now)
        count += 1
        read += tasks
        written += changed
    return AgingRun(queues=count, tasks=read, changed=written)
