"""A queue's escalation rules: ordered levels, each a trigger and actions (see tasks/sla/escalation.py for how they run)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InvalidInput

TRIGGERS = {"overdue", "before_due", "overdue_by", "open_longer_than"}
ACTIONS = {"raise_priority", "move_to_queue", "reassign_to_supervisor", "notify"}


@dataclass(frozen=True)
class EscalationLevel:
    level: int
    trigger: str
    hours: float
    raise_priority: int
    move_to_queue: str | None
    reassign_to_supervisor: bool
    notify: bool


def parse_rules(rules) -> list[EscalationLevel]:
    """Validate a queue's escalation rules; raise InvalidInput naming the bad part."""
    if not isinstance(rules, list):
        raise InvalidInput(
            "escalation rules must be a list", fields={"escalation_rules": ["Must be a list of levels."]}
        )
    levels = []
    for index, rule in enumerate(rules):
        where = f"level {index + 1}"
        if not isinstance(rule, dict):
            raise InvalidInput(
                f"{where} must be an object", fields={"escalation_rules": [f"{where}: must be an object."]}
            )
        trigger = rule.get("trigger") or {}
        actions = rule.get("actions") or {}
        kind = trigger.get("type")
        problems = []
        if rule.get("level", index + 1) != index + 1:
            problems.append("levels must be numbered 1, 2, 3 … in order")
        if kind not in TRIGGERS:
            problems.append(f"trigger type must be one of {', '.join(sorted(TRIGGERS))}")
        hours = trigger.get("hours", 0)
        if kind != "overdue" and (not isinstance(hours, (int, float)) or isinstance(hours, bool) or hours < 0):
            problems.append("trigger hours must be a number ≥ 0")
        unknown = set(actions) - ACTIONS
        if unknown:
            problems.append(f"unknown actions: {', '.join(sorted(unknown))}")
        if not set(actions) & ACTIONS:
            problems.append("give at least one action")
        raise_by = actions.get("raise_priority", 0)
        if not isinstance(raise_by, int) or isinstance(raise_by, bool) or not 0 <= raise_by <= 100:
            problems.append("raise_priority must be a whole number from 0 to 100")
        if problems:
            raise InvalidInput(
                f"{where}: {problems[0]}", fields={"escalation_rules": [f"{where}: {p}." for p in problems]}
            )
        levels.append(
            EscalationLevel(
                level=index + 1,
                trigger=kind,
                hours=float(hours or 0),
                raise_priority=raise_by,
                move_to_queue=actions.get("move_to_queue") or None,
                reassign_to_supervisor=bool(actions.get("reassign_to_supervisor")),
                notify=bool(actions.get("notify")),
            )
        )
    return levels
