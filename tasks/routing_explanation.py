"""Why a task went where it went, in words: the `routing` its history events keep, as a headline and reasons.

Push routing (queues/routing.py: RoutingDecision.explanation), claim-next (tasks/sql/claim_next_routing.sql) and
the services that assign by hand (claim, reassign, delegate, resolve) each record a compact dict on the event that
moved the task; the task page ("Why is this mine?") and GET /api/workflow/tasks/{id}/routing read it back here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from queues.models import RoutingStrategy

# What each reason code means, for a user passed over by push routing and for a queue passed over by claim-next.
CANDIDATE_REASONS = {
    "at_capacity": "at capacity",
    "missing_skills": "missing skills",
    "more_loaded": "more loaded",
    "tied": "as loaded; the earlier user came first",
    "not_next_in_rotation": "not next in the rotation",
}
QUEUE_REASONS = {
    "tasks_held": "each task it had for the claimer was being claimed by someone else",
    "queue_busy": "busy: another claim was updating it at that moment",
    "at_capacity": "at capacity",
    "missing_skills": "its open tasks need skills the claimer lacks",
    "no_open_task": "no open task",
    "ranked_lower": "its best open task ranked lower",
}


@dataclass
class RoutingExplanation:
    """One routing decision put into words: a headline, then one line per candidate or hop."""

    kind: str
    headline: str
    reasons: list[str] = field(default_factory=list)


def _load(entry: dict) -> str:
    if entry.get("load") is None or entry.get("capacity") is None:
        return ""
    return f" ({entry['load']}/{entry['capacity']})"


def _strategy_label(strategy: str) -> str:
    try:
        return RoutingStrategy(strategy).label.lower()
    except ValueError:
        return str(strategy).lower()


def _overflow_lines(routing: dict) -> list[str]:
    return [
        f"Passed over queue {hop['queue']}: {CANDIDATE_REASONS.get(hop.get('reason'), hop.get('reason'))}"
        f"{_load(hop)}; it overflows to the next queue."
        for hop in routing.get("overflow") or []
    ]


def _omitted(routing: dict, noun: str) -> list[str]:
    omitted = routing.get("omitted") or 0
    return [f"…and {omitted} more {noun} not listed."] if omitted else []


def _push(routing: dict) -> RoutingExplanation:
    strategy = _strategy_label(routing.get("strategy", ""))
    chosen = routing.get("chosen")
    entries = routing.get("candidates") or []
    if chosen is None:
        headline = (
            f"Not assigned: by {strategy} routing nobody who works {routing.get('queue')} had room and the skills."
        )
    else:
        mine = next((c for c in entries if c.get("chosen")), {})
        if routing.get("rule") == "least_loaded":
            rule = f"the least loaded eligible caseworker{_load(mine)}"
        elif routing.get("after"):
            rule = f"next in the rotation after {routing['after']}"
        else:
            rule = "next in the rotation"
        if routing.get("strategy") == RoutingStrategy.PRIORITY_WEIGHTED:
            above = routing.get("priority", 0) >= routing.get("threshold", 0)
            rule = (
                f"priority {routing.get('priority')} is {'at or above' if above else 'below'} "
                f"{routing.get('threshold')}, so {rule}"
            )
        headline = f"Routed to {chosen} by {strategy} routing in {routing.get('queue')}: {rule}."
    reasons = []
    if routing.get("required_skills"):
        reasons.append(f"The task needs skills: {', '.join(routing['required_skills'])}.")
    for entry in entries:
        if entry.get("chosen"):
            continue
        why = CANDIDATE_REASONS.get(entry.get("reason"), entry.get("reason"))
        if entry.get("missing"):
            why = f"missing skill{'s' if len(entry['missing']) > 1 else ''} {', '.join(entry['missing'])}"
        reasons.append(f"{entry.get('user')}{_load(entry)}: {why}.")
    return RoutingExplanation("push", headline, _overflow_lines(routing) + reasons + _omitted(routing, "caseworkers"))


def _claim_next(routing: dict, actor: str) -> RoutingExplanation:
    queues = routing.get("queues") or []
    position = next((n for n, q in enumerate(queues) if q.get("chosen")), None)
    chosen = queues[position] if position is not None else {"queue": routing.get("chosen")}
    passed_over = bool(position)  # queues are listed best first: those before the chosen one were tried
    priority = f" (priority {chosen['head_priority']})" if chosen.get("head_priority") is not None else ""
    if passed_over:
        rule = f"the best-ranked of {actor}'s queues that could give a task; its best open task{priority}"
    else:
        rule = f"its best open task{priority} ranked first among {actor}'s queues"
    headline = f"{actor} claimed it with claim-next from {chosen['queue']}: {rule}."
    reasons = []
    if routing.get("took_head") is False:
        reasons.append("Its best task was being claimed by someone else at that moment, so the next one was taken.")
    if routing.get("waited"):
        reasons.append("Every queue was busy with other claims, so the claim waited for this one.")
    if chosen.get("load") is not None:
        reasons.append(f"{chosen['queue']} had room ({chosen['load']}/{chosen.get('capacity')} with this task).")
    for entry in queues:
        if entry.get("chosen"):
            continue
        why = QUEUE_REASONS.get(entry.get("reason"), entry.get("reason"))
        if entry.get("missing"):
            why = f"{why} ({', '.join(entry['missing'])})"
        priority = (
            f" (best open task priority {entry['head_priority']})" if entry.get("head_priority") is not None else ""
        )
        reasons.append(f"Queue {entry.get('queue')}{priority}: {why}{_load(entry)}.")
    return RoutingExplanation("claim_next", headline, reasons + _omitted(routing, "queues"))


def routing_explained(routing: dict | None, *, actor: str | None = None) -> RoutingExplanation | None:
    """The routing of one history event in words; None for an event without one."""
    if not routing:
        return None
    kind = routing.get("kind")
    who = actor or "Someone"
    if kind == "push":
        return _push(routing)
    if kind == "claim_next":
        return _claim_next(routing, who)
    if kind == "overflow":
        return RoutingExplanation("overflow", f"Placed in {routing.get('queue')}.", _overflow_lines(routing))
    if kind == "claim":
        return RoutingExplanation("claim", f"{routing.get('chosen')} claimed it from {routing.get('queue')}.")
    if kind == "reassign":
        headline = f"Assigned to {routing.get('chosen')} by supervisor {routing.get('by')}"
        headline += f" (it was with {routing['previous']})." if routing.get("previous") else "."
        return RoutingExplanation("reassign", headline)
    if kind == "delegate":
        return RoutingExplanation(
            "delegate",
            f"Delegated to {routing.get('chosen')} by supervisor {routing.get('by')}; it goes back to "
            f"{routing.get('owner')} once resolved.",
        )
    if kind == "resolve":
        return RoutingExplanation(
            "resolve", f"Back with {routing.get('chosen')}: {routing.get('by')} resolved the delegation."
        )
    return RoutingExplanation(str(kind), f"Routed ({kind}).")


def routing_decisions(events) -> list[dict]:
    """History events that carry a routing decision, as plain data for the API and the pages: when, which event,
    who acted, the decision in words and as recorded."""
    decisions = []
    for event in events:
        actor = event.actor.get_username() if event.actor_id else None
        explained = routing_explained(event.routing, actor=actor)
        if explained is None:
            continue
        decisions.append(
            {
                "event_id": event.event_id,
                "event_type": event.event_type,
                "at": event.created_at,
                "actor": actor,
                "kind": explained.kind,
                "headline": explained.headline,
                "reasons": explained.reasons,
                "routing": event.routing,
            }
        )
    return decisions
