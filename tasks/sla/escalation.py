"""SLA enforcement: apply each queue's escalation rules to the tasks that meet them, set-based and idempotent.

A queue's `escalation_rules` is an ordered list of levels:

    [{"level": 1, "trigger": {"type": "overdue"},
      "actions": {"raise_priority": 20, "move_to_queue": "escalations", "notify": true}},
     {"level": 2, "trigger": {"type": "overdue_by", "hours": 24}, "actions": {"reassign_to_supervisor": true}}]

Triggers: `overdue` (due date passed), `before_due` (N hours before the due date), `overdue_by` (N hours past
it), `open_longer_than` (N hours since creation). Actions: `raise_priority` (by N, capped at 100),
`move_to_queue` (the task waits OPEN there), `reassign_to_supervisor` (a supervisor of the queue holds it),
`notify` (an alert per task per level).

Level L applies only to tasks at escalation_level L-1, in one UPDATE per queue and level; the UPDATE's row locks
and its `escalation_level = L-1` condition make a second run, or a second worker at the same moment, skip what
is already escalated. History rows and queue loads change in the same statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from core.errors import InvalidInput
from entitlements.access import users_with
from entitlements.models import Capability
from queues.escalation import EscalationLevel, parse_rules
from queues.locks import queues_lock
from queues.models import WorkflowQueue
from tasks import signals
from tasks.models import NotificationKind, WorkflowTask
from tasks.notifications import Notice, notifications_create, task_label, task_link
from tasks.sla.alerts import sla_breach_alerts_raise

TRIGGER_SQL = {
    "overdue": "t.due_date < %(now)s",
    "before_due": "t.due_date < %(now)s + make_interval(secs => %(seconds)s)",
    "overdue_by": "t.due_date < %(now)s - make_interval(secs => %(seconds)s)",
    "open_longer_than": "t.created_at < %(now)s - make_interval(secs => %(seconds)s)",
}

ESCALATE_SQL = """
WITH due AS (
    SELECT t.task_id
      FROM flowable.workflow_tasks t
     WHERE t.queue_name = %(queue)s
       AND t.status IN ('OPEN', 'CLAIMED')
       AND t.escalation_level = %(previous_level)s
       AND {trigger}
     ORDER BY t.task_id
       FOR UPDATE SKIP LOCKED
), changed AS (
    UPDATE flowable.workflow_tasks t
       SET priority = LEAST(100, t.priority + %(raise_by)s),
           escalation_level = %(level)s,
           queue_name = COALESCE(%(target_queue)s, t.queue_name),
           status = CASE WHEN %(supervisor_id)s::bigint IS NOT NULL THEN 'CLAIMED'
                         WHEN %(target_queue)s::text IS NOT NULL THEN 'OPEN'
                         ELSE t.status END,
           assignee_id = CASE WHEN %(supervisor_id)s::bigint IS NOT NULL THEN %(supervisor_id)s::bigint
                              WHEN %(target_queue)s::text IS NOT NULL THEN NULL
                              ELSE t.assignee_id END,
           claimed_at = CASE WHEN %(supervisor_id)s::bigint IS NOT NULL THEN %(now)s
                             WHEN %(target_queue)s::text IS NOT NULL THEN NULL
                             ELSE t.claimed_at END,
           owner_id = CASE WHEN %(supervisor_id)s::bigint IS NOT NULL OR %(target_queue)s::text IS NOT NULL
                           THEN NULL ELSE t.owner_id END,
           candidate_groups = CASE WHEN %(target_queue)s::text IS NOT NULL THEN ARRAY[%(target_queue)s]::varchar[]
                                   ELSE t.candidate_groups END,
           priority_boost = CASE WHEN %(target_queue)s::text IS NOT NULL THEN 0 ELSE t.priority_boost END,
           updated_at = %(now)s
      FROM due, flowable.workflow_tasks old
     WHERE t.task_id = due.task_id AND old.task_id = due.task_id
 RETURNING t.task_id, t.process_instance_id, t.queue_name, t.status, t.priority, t.name,
           old.queue_name AS old_queue, old.status AS old_status, old.priority AS old_priority,
           old.assignee_id AS old_assignee_id, t.assignee_id
), loads AS (
    SELECT queue_name, sum(delta) AS delta FROM (
        SELECT old_queue AS queue_name, -1 AS delta FROM changed WHERE old_status = 'CLAIMED'
        UNION ALL
        SELECT queue_name, 1 FROM changed WHERE status = 'CLAIMED'
    ) d GROUP BY queue_name
), load_update AS (
    UPDATE queues.workflow_queues q SET current_load = q.current_load + loads.delta
      FROM loads WHERE q.queue_name = loads.queue_name AND loads.delta <> 0
), history AS (
    INSERT INTO flowable.task_history (task_id, event_type, actor_id, via_account_id, old_values, new_values, comment, created_at)
    SELECT task_id, 'ESCALATED', NULL, NULL,
           jsonb_build_object('queue', old_queue, 'status', old_status, 'priority', old_priority,
                              'escalation_level', %(previous_level)s),
           jsonb_build_object('queue', queue_name, 'status', status, 'priority', priority,
                              'escalation_level', %(level)s),
           %(comment)s, %(now)s
      FROM changed
)
SELECT task_id, process_instance_id, old_queue, queue_name, name, old_assignee_id, assignee_id FROM changed
"""


@dataclass
class EscalationOutcome:
    queue: str
    level: int
    tasks: int
    notify: bool
    task_ids: list[int]


def _supervisor_of(queue: WorkflowQueue) -> int | None:
    supervisor = (
        users_with(capability=Capability.SUPERVISE, queue=queue).order_by("pk").values_list("pk", flat=True).first()
    )
    return supervisor


def _count_due(queue: WorkflowQueue, level: EscalationLevel, now: datetime) -> int:
    sql = (
        "SELECT count(*) FROM flowable.workflow_tasks t WHERE t.queue_name = %(queue)s"
        " AND t.status IN ('OPEN', 'CLAIMED') AND t.escalation_level = %(previous_level)s AND "
        + TRIGGER_SQL[level.trigger]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {"queue": queue.queue_name, "previous_level": level.level - 1, "now": now, "seconds": level.hours * 3600},
        )
        return cursor.fetchone()[0]


def _escalation_notices(rows, level: EscalationLevel) -> list[Notice]:
    """Tell each escalated task's assignee (at risk when the level fires before the due date), and a supervisor
    the level hands the task to that it is theirs now."""
    at_risk = level.trigger == "before_due"
    notices = []
    for task_id, _, old_queue, queue_name, name, old_assignee_id, assignee_id in rows:
        label = task_label(task_id, name)
        if old_assignee_id is not None:
            if at_risk:
                text = f"Your task {label} in queue {old_queue} is due within {level.hours:g} hours."
            else:
                where = f", moved to queue {queue_name}" if queue_name != old_queue else ""
                text = f"Your task {label} in queue {old_queue} was escalated to level {level.level}{where}."
            kind = NotificationKind.TASK_AT_RISK if at_risk else NotificationKind.TASK_ESCALATED
            notices.append(Notice(old_assignee_id, kind, text, task_link(task_id)))
        if assignee_id is not None and assignee_id != old_assignee_id:
            notices.append(
                Notice(
                    assignee_id,
                    NotificationKind.TASK_ASSIGNED,
                    f"Task {label} in queue {queue_name} was assigned to you (SLA escalation level {level.level}).",
                    task_link(task_id),
                )
            )
    return notices


@transaction.atomic
def escalate_overdue_tasks(*, now: datetime | None = None, dry_run: bool = False) -> list[EscalationOutcome]:
    """Apply the next escalation level to every task that meets it; one statement per queue and level."""
    now = now or timezone.now()
    outcomes = []
    queues = [
        (queue, parse_rules(queue.escalation_rules))
        for queue in WorkflowQueue.objects.exclude(escalation_rules=[]).order_by("queue_name")
    ]
    if not dry_run:
        # One transaction changes the loads of these queues and of those their rules move work to: lock them all
        # now, in one statement, and then pass over busy tasks (SKIP LOCKED) rather than wait for them (tasks/locks.py).
        queues_lock(
            queue_names=[
                name
                for queue, levels in queues
                for name in (queue.queue_name, *(level.move_to_queue for level in levels))
            ]
        )
    for queue, levels in queues:
        for level in levels:
            if dry_run:
                count = _count_due(queue, level, now)
                if count:
                    outcomes.append(EscalationOutcome(queue.queue_name, level.level, count, level.notify, []))
                continue
            target = level.move_to_queue if level.move_to_queue and level.move_to_queue != queue.queue_name else None
            if target and not WorkflowQueue.objects.filter(queue_name=target).exists():
                raise InvalidInput(
                    f"queue {queue.queue_name} escalates to unknown queue {target}",
                    fields={"escalation_rules": [f"Unknown queue {target}."]},
                )
            supervisor_id = None
            if level.reassign_to_supervisor:
                supervisor_id = _supervisor_of(WorkflowQueue.objects.get(queue_name=target) if target else queue)
            params = {
                "queue": queue.queue_name,
                "previous_level": level.level - 1,
                "level": level.level,
                "now": now,
                "seconds": level.hours * 3600,
                "raise_by": level.raise_priority,
                "target_queue": target,
                "supervisor_id": supervisor_id,
                "comment": f"SLA escalation level {level.level} ({level.trigger})",
            }
            with connection.cursor() as cursor:
                cursor.execute(ESCALATE_SQL.format(trigger=TRIGGER_SQL[level.trigger]), params)
                rows = cursor.fetchall()
            if not rows:
                continue
            moved = [
                {"task_id": task_id, "process_instance_id": instance_id, "from_queue": old, "to_queue": new}
                for task_id, instance_id, old, new, *_ in rows
                if old != new
            ]
            notifications_create(notices=_escalation_notices(rows, level), now=now)
            if moved:
                signals.tasks_moved_in_bulk.send(
                    sender=WorkflowTask, moves=moved, reason=f"SLA escalation level {level.level}", at=now
                )
            outcomes.append(
                EscalationOutcome(queue.queue_name, level.level, len(rows), level.notify, [r[0] for r in rows])
            )
    if not dry_run:
        notices = [o for o in outcomes if o.notify]
        if notices:
            sla_breach_alerts_raise(outcomes=notices)
    return outcomes
