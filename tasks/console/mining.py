"""Process mining for supervisors: per definition version and period, how work really moved through the diagram.

Figures, from the task rows (live and archived) of the definition version's instances:

- per activity (userTask element id): completed tasks, re-entries (a completed task that was not the first of its
  activity in its instance: rework), and the median and 90th percentile of the time at it (created to completed),
  working on it (claimed to completed; created, when never claimed) and waiting before it (created to claimed; only
  claimed tasks). A task counts on the UTC day it completed. A task released and claimed again keeps its last
  claim time, so its waiting includes the first claim.
- per move between consecutive activities of an instance (in the order their tasks were created), how often it was
  taken, on the day the second task was created; the first task's move from the start on its day, the last task's
  move to the end on the day its instance completed. Each move is placed on the diagram's sequence flows when the
  diagram gives one path for it (tasks/bpmn/mining_overlay.py says how and where that fails).
- variants: the sequence of activities of each completed instance, on the day it ended: the most common, each with
  its count, share of the period's completed instances and median duration (start to end of the instance).
- the bottleneck: the activity with the highest 90th percentile of time at it (waiting plus working).

Computed incrementally: the three materialized views of tasks/sql/mv_mining_*.sql hold one row per definition
version, day and activity (move, variant), refreshed with the dashboards (refresh_dashboards, every 15 minutes); a
page view reads only the rows of its period. The durations are kept whole per day (an array of seconds per row), so
the percentiles over any run of days are exact (PostgreSQL's percentile_cont: linear interpolation), not a merge of
daily summaries; the cost is one number per completed task in the view, and the views keep only the last 90 days
(the longest of PERIOD_DAYS). A period is the last N UTC days, today included.

Who may see it: staff who supervise at least one queue. The figures are counts and durations across the definition's
queues, never a task's or case's content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.utils import timezone

from core.replica import read_connection, replica_reads
from entitlements.access import queues_for
from entitlements.models import Capability
from tasks.bpmn.diagram_layout import DiagramError
from tasks.bpmn.mining_overlay import START, FlowGraph, NodeHeat, flow_graph, mining_overlay_svg
from tasks.models import WorkflowDefinition

PERIOD_DAYS = (7, 30, 90)
DEFAULT_PERIOD_DAYS = 30
COLOUR_BY_FREQUENCY = "frequency"
COLOUR_BY_DURATION = "duration"
COLOUR_MODES = (COLOUR_BY_FREQUENCY, COLOUR_BY_DURATION)
TOP_VARIANTS = 10

ACTIVITY_COUNTS_SQL = """
SELECT task_definition_key, sum(completed)::bigint, sum(reentries)::bigint
  FROM flowable.mv_mining_activity_daily
 WHERE workflow_id = %(workflow_id)s AND day >= %(since)s
 GROUP BY task_definition_key
"""

# One pass per measure over the period's arrays; each row: activity, measure, median, 90th percentile.
ACTIVITY_PERCENTILES_SQL = """
SELECT task_definition_key, 'total', percentile_cont(0.5) WITHIN GROUP (ORDER BY s),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY s)
  FROM flowable.mv_mining_activity_daily, unnest(total_seconds) AS s
 WHERE workflow_id = %(workflow_id)s AND day >= %(since)s
 GROUP BY task_definition_key
UNION ALL
SELECT task_definition_key, 'active', percentile_cont(0.5) WITHIN GROUP (ORDER BY s),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY s)
  FROM flowable.mv_mining_activity_daily, unnest(active_seconds) AS s
 WHERE workflow_id = %(workflow_id)s AND day >= %(since)s
 GROUP BY task_definition_key
UNION ALL
SELECT task_definition_key, 'wait', percentile_cont(0.5) WITHIN GROUP (ORDER BY s),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY s)
  FROM flowable.mv_mining_activity_daily, unnest(wait_seconds) AS s
 WHERE workflow_id = %(workflow_id)s AND day >= %(since)s
 GROUP BY task_definition_key
"""

TRANSITIONS_SQL = """
SELECT source_key, target_key, sum(taken)::bigint
  FROM flowable.mv_mining_transition_daily
 WHERE workflow_id = %(workflow_id)s AND day >= %(since)s
 GROUP BY source_key, target_key
 ORDER BY 3 DESC, 1, 2
"""

VARIANTS_SQL = """
SELECT variant, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY d)
  FROM flowable.mv_mining_variant_daily, unnest(duration_seconds) AS d
 WHERE workflow_id = %(workflow_id)s AND day >= %(since)s
 GROUP BY variant
 ORDER BY 2 DESC, 1
 LIMIT %(limit)s
"""

COMPLETED_INSTANCES_SQL = """
SELECT coalesce(sum(instances), 0)::bigint
  FROM flowable.mv_mining_variant_daily
 WHERE workflow_id = %(workflow_id)s AND day >= %(since)s
"""

LAST_REFRESH_SQL = "SELECT refreshed_at FROM flowable.dashboard_refreshes ORDER BY refresh_id DESC LIMIT 1"


@dataclass
class ActivityFigures:
    key: str
    name: str
    completed: int = 0
    reentries: int = 0
    median_total_seconds: float | None = None
    p90_total_seconds: float | None = None
    median_active_seconds: float | None = None
    p90_active_seconds: float | None = None
    median_wait_seconds: float | None = None
    p90_wait_seconds: float | None = None

    @property
    def rework_pct(self) -> float | None:
        return 100.0 * self.reentries / self.completed if self.completed else None


@dataclass(frozen=True)
class Transition:
    source_key: str  # START: the instance's start
    target_key: str  # START: the instance's end
    taken: int
    flow_ids: tuple[str, ...] | None  # None: not placed on the diagram
    source_name: str
    target_name: str


@dataclass(frozen=True)
class Variant:
    keys: tuple[str, ...]
    names: tuple[str, ...]
    instances: int
    share_pct: float
    median_seconds: float


@dataclass
class ProcessMining:
    definition: WorkflowDefinition
    days: int
    since: date
    colour_by: str
    activities: list[ActivityFigures] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    flows_taken: dict[str, int] = field(default_factory=dict)
    variants: list[Variant] = field(default_factory=list)
    completed_instances: int = 0
    bottleneck: str | None = None
    svg: str = ""
    problem: str = ""
    figures_as_of: datetime | None = None

    @property
    def unplaced(self) -> list[Transition]:
        return [t for t in self.transitions if t.flow_ids is None]


def may_view_process_mining(*, user) -> bool:
    """Staff who supervise at least one queue (the admin site checks staff)."""
    return bool(user.is_staff and queues_for(user=user, capability=Capability.SUPERVISE).exists())


def period_since(*, days: int, today: date | None = None) -> date:
    """The first UTC day of the last `days` days, today included."""
    today = today or timezone.now().astimezone(UTC).date()
    return today - timedelta(days=days - 1)


@replica_reads
def process_mining(
    *,
    definition: WorkflowDefinition,
    days: int = DEFAULT_PERIOD_DAYS,
    colour_by: str = COLOUR_BY_FREQUENCY,
    top_variants: int = TOP_VARIANTS,
    today: date | None = None,
) -> ProcessMining:
    """The figures and the overlay of one definition version over the last `days` UTC days. Six small queries over
    the mining views, on the read replica when one serves."""
    since = period_since(days=days, today=today)
    mining = ProcessMining(definition=definition, days=days, since=since, colour_by=colour_by)
    try:
        graph = flow_graph(bpmn_xml=definition.bpmn_xml)
    except DiagramError as exc:
        graph, mining.problem = None, exc.detail
    names = graph.names if graph else {}
    params = {"workflow_id": definition.pk, "since": since, "limit": top_variants}
    activities: dict[str, ActivityFigures] = {
        key: ActivityFigures(key=key, name=names[key]) for key in (graph.activities if graph else [])
    }
    with read_connection().cursor() as cursor:
        cursor.execute(ACTIVITY_COUNTS_SQL, params)
        for key, completed, reentries in cursor.fetchall():
            figures = activities.setdefault(key, ActivityFigures(key=key, name=names.get(key, key)))
            figures.completed, figures.reentries = completed, reentries
        cursor.execute(ACTIVITY_PERCENTILES_SQL, params)
        for key, measure, median, p90 in cursor.fetchall():
            figures = activities[key]
            setattr(figures, f"median_{measure}_seconds", median)
            setattr(figures, f"p90_{measure}_seconds", p90)
        cursor.execute(TRANSITIONS_SQL, params)
        transitions = cursor.fetchall()
        cursor.execute(COMPLETED_INSTANCES_SQL, params)
        mining.completed_instances = cursor.fetchone()[0]
        cursor.execute(VARIANTS_SQL, params)
        variants = cursor.fetchall()
        cursor.execute(LAST_REFRESH_SQL)
        row = cursor.fetchone()
        mining.figures_as_of = row[0] if row else None
    mining.activities = list(activities.values())
    mining.transitions = [_placed(graph, names, source, target, taken) for source, target, taken in transitions]
    for transition in mining.transitions:
        for flow_id in transition.flow_ids or ():
            mining.flows_taken[flow_id] = mining.flows_taken.get(flow_id, 0) + transition.taken
    mining.variants = [
        Variant(
            keys=tuple(keys),
            names=tuple(names.get(key, key) for key in keys),
            instances=count,
            share_pct=100.0 * count / mining.completed_instances if mining.completed_instances else 0.0,
            median_seconds=median,
        )
        for keys, count, median in variants
    ]
    mining.bottleneck = bottleneck_of(mining.activities)
    if graph is not None:
        mining.svg = mining_overlay_svg(
            bpmn_xml=definition.bpmn_xml,
            heat=_heat(mining.activities, colour_by),
            flows_taken=mining.flows_taken,
            bottleneck=mining.bottleneck,
        )
    return mining


def bottleneck_of(activities: list[ActivityFigures]) -> str | None:
    """The activity with the highest 90th percentile of time at it; None when nothing completed."""
    timed = [a for a in activities if a.p90_total_seconds is not None]
    if not timed:
        return None
    return max(timed, key=lambda a: (a.p90_total_seconds, a.key)).key


def _placed(graph: FlowGraph | None, names: dict[str, str], source: str, target: str, taken: int) -> Transition:
    path = graph.path(source, target) if graph else None
    return Transition(
        source_key=source,
        target_key=target,
        taken=taken,
        flow_ids=tuple(path) if path is not None else None,
        source_name="(start)" if source == START else names.get(source, source),
        target_name="(end)" if target == START else names.get(target, target),
    )


def _heat(activities: list[ActivityFigures], colour_by: str) -> dict[str, NodeHeat]:
    def value(a: ActivityFigures) -> float | None:
        return float(a.completed) if colour_by == COLOUR_BY_FREQUENCY else a.p90_total_seconds

    values = {a.key: value(a) for a in activities if a.completed}
    most = max((v for v in values.values() if v is not None), default=0.0)
    heat = {}
    for a in activities:
        if a.key not in values or values[a.key] is None:
            continue
        note = f"{a.completed} completed"
        if a.p90_total_seconds is not None:
            note += (
                f"; time at it median {duration_text(a.median_total_seconds)}, p90 {duration_text(a.p90_total_seconds)}"
            )
        if a.reentries:
            note += f"; {a.reentries} re-entries"
        heat[a.key] = NodeHeat(share=values[a.key] / most if most else 0.0, note=note)
    return heat


def duration_text(seconds: float | None) -> str:
    """A duration as a person reads it: '45 s', '12 min', '3 h 5 min', '2 d 4 h'."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"
