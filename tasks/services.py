"""Writes of the task lifecycle, one module past 600 lines: every write shares the lock, history and load rules.

Create, claim, release, complete, reassign, delegate, escalate, move. Each service is one transaction that locks
rows in one order (process instance, then task, then queue: the functions of tasks/locks.py), appends a history
event with actor, old and new values, and keeps each queue's current_load equal to its CLAIMED tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from datetime import datetime

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.errors import Conflict, InvalidInput, PermissionDenied
from entitlements.access import may, queues_for, users_with
from entitlements.models import Capability, User
from entitlements.row_scope import acting_for_user, self_scoped_statement, system_scope
from queues import routing
from queues.calendar import add_business_hours
from queues.escalation import parse_rules as parse_escalation_rules
from queues.models import AssignmentMode, WorkflowQueue
from queues.selectors import business_calendar_for

from . import signals
from .bpmn.forms import (
    redact_sensitive,
    refuse_sealed_input,
    seal_sensitive,
    sensitive_names,
    validate_task_variables,
)
from .locks import process_instances_for_update, queues_for_update, queues_lock, tasks_for_update
from .models import MAX_PRIORITY, MIN_PRIORITY, TaskEventType, TaskHistory, TaskStatus, WorkflowTask
from .notifications import task_assigned_notify
from .selectors import task_for_user

MAX_NAME_LENGTH = 300


# --- helpers shared by the services ------------------------------------------------------------------------------

_history_batch: ContextVar[list[TaskHistory] | None] = ContextVar("task_history_batch", default=None)


@contextmanager
def history_batched() -> Iterator[None]:
    """The history rows the block appends are inserted at its end, in one statement, in the order appended (so
    their event ids are in that order too). Nothing is inserted when the block raises: its transaction rolls back.
    Inside a batch already, the outer batch inserts them. The block must not read back the rows it appends."""
    if _history_batch.get() is not None:
        yield
        return
    rows: list[TaskHistory] = []
    token = _history_batch.set(rows)
    try:
        yield
    finally:
        _history_batch.reset(token)
    if rows:
        TaskHistory.objects.bulk_create(rows)


def _history(
    task: WorkflowTask, event_type: str, *, user, via_account=None, old=None, new=None, comment="", routing=None
) -> TaskHistory:
    event = TaskHistory(
        task=task,
        event_type=event_type,
        actor=user,
        via_account=via_account,
        old_values=old or {},
        new_values=new or {},
        comment=comment or "",
        routing=routing,
    )
    batch = _history_batch.get()
    if batch is None:
        event.save(force_insert=True)
    else:
        batch.append(event)
    return event


def task_history_append(task: WorkflowTask, event_type: str, **fields) -> TaskHistory:
    """Append a history event for a task another module's service changed (its process suspended, resumed)."""
    return _history(task, event_type, **fields)


def _require_not_suspended(task: WorkflowTask, *, action: str) -> None:
    if task.suspended:
        raise Conflict(
            f"cannot {action} task {task.pk}: its process {task.process_instance_id} is suspended",
            code="process_suspended",
        )


def _adjust_load(queue_name: str, delta: int) -> None:
    if delta:
        WorkflowQueue.objects.filter(queue_name=queue_name).update(current_load=F("current_load") + delta)


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


def _user_skills(user) -> set[str]:
    return set(user.skills.values_list("skill_code", flat=True))


def _require_skills(task: WorkflowTask, user) -> None:
    if not task.required_skills:
        return  # most tasks need none: no query for the user's skills
    missing = sorted(set(task.required_skills) - _user_skills(user))
    if missing:
        raise Conflict(
            f"{user.get_username()} lacks the skills this task needs: {', '.join(missing)}", code="missing_skills"
        )


def _require_state(task: WorkflowTask, *allowed: str, action: str) -> None:
    if task.status not in allowed:
        raise Conflict(f"cannot {action} a {task.status} task", code=f"task_{task.status.lower()}")


def _active_user(username_or_user, *, field: str) -> User:
    if isinstance(username_or_user, User):
        return username_or_user
    user = User.objects.filter(username=username_or_user, is_active=True).first() if username_or_user else None
    if user is None:
        raise InvalidInput(f"no active user {username_or_user!r}", fields={field: ["No active user by that name."]})
    return user


def _validate_priority(priority, field: str = "priority") -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidInput(
            f"priority must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}",
            fields={field: [f"Must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}."]},
        )
    return priority


def sla_hours_for(queue: WorkflowQueue, priority: int) -> int:
    """The queue's SLA for a priority: the override of the highest threshold at or below it, else the default."""
    overrides = []
    for threshold, hours in (queue.sla_priority_hours or {}).items():
        try:
            overrides.append((int(threshold), int(hours)))
        except (TypeError, ValueError):
            continue
    for threshold, hours in sorted(overrides, reverse=True):
        if priority >= threshold:
            return hours
    return queue.sla_default_hours


def due_date_for(queue: WorkflowQueue, priority: int, *, start: datetime, sla_hours: float | None = None) -> datetime:
    """start plus the SLA hours, counted in the queue's business calendar (round the clock when it has none)."""
    hours = sla_hours if sla_hours is not None else sla_hours_for(queue, priority)
    return add_business_hours(start, hours, business_calendar_for(queue=queue))


# --- creation and push routing -----------------------------------------------------------------------------------


def routing_candidates(queue: WorkflowQueue) -> list[routing.Candidate]:
    """Users who may work `queue` now, with skills, capacity and current CLAIMED load, by name (one query)."""
    claimed = (
        WorkflowTask.objects.filter(assignee=OuterRef("pk"), status=TaskStatus.CLAIMED)
        .order_by()
        .values("assignee")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        users_with(capability=Capability.WORK, queue=queue)
        .annotate(
            load=Coalesce(Subquery(claimed, output_field=IntegerField()), Value(0)),
            skill_codes=ArrayAgg("skills__skill_code", distinct=True, default=Value([])),
        )
        .values_list("pk", "username", "skill_codes", "max_concurrent_tasks", "load")
    )
    return [
        routing.Candidate(
            user_id=pk, username=username, skills=frozenset(s for s in skills if s), capacity=capacity, load=load
        )
        for pk, username, skills, capacity, load in rows
    ]


def _push_decision(queue: WorkflowQueue, *, required_skills: list[str], priority: int) -> routing.RoutingDecision:
    """Whom the queue's routing strategy gives a new task to, and why (nobody, when no eligible user has room)."""
    return routing.route(
        strategy=queue.routing_strategy,
        candidates=routing_candidates(queue),
        required_skills=required_skills,
        priority=priority,
        cursor=queue.round_robin_cursor,
    )


def _push(task: WorkflowTask, queue: WorkflowQueue, decision: routing.RoutingDecision, *, user, via_account, why):
    """Assign a new task to the caseworker its queue's routing strategy chose; the CLAIMED event keeps why."""
    choice = decision.chosen
    assignee = User.objects.get(pk=choice.user_id)
    task.status = TaskStatus.CLAIMED
    task.assignee = assignee
    task.claimed_at = timezone.now()
    task.save(update_fields=["status", "assignee", "claimed_at", "updated_at"])
    WorkflowQueue.objects.filter(pk=queue.pk).update(
        current_load=F("current_load") + 1, round_robin_cursor=choice.user_id
    )
    _history(
        task,
        TaskEventType.CLAIMED,
        user=user,
        via_account=via_account,
        old={"status": TaskStatus.OPEN, "assignee": None},
        new={"status": TaskStatus.CLAIMED, "assignee": assignee.get_username()},
        comment=f"routed by {queue.routing_strategy.lower()}",
        routing=why,
    )
    task_assigned_notify(task=task, assignee_id=assignee.pk, reason=f"routed by {queue.routing_strategy.lower()}")


def task_insert(
    *,
    queue: WorkflowQueue,
    name: str,
    user=None,
    via_account=None,
    description: str = "",
    priority: int = 50,
    due_date: datetime | None = None,
    sla_hours: float | None = None,
    variables: dict | None = None,
    required_skills: list[str] | None = None,
    candidate_groups: list[str] | None = None,
    form_fields: list[dict] | None = None,
    process_instance=None,
    engine_task_id=None,
    task_definition_key: str = "",
) -> WorkflowTask:
    """Put a task into a queue (or its overflow) and push it if the queue routes. No access check: callers check.

    Must run inside the caller's transaction. A queue that pushes is locked (with its overflow target, in one
    statement) since the insert changes its load; a queue that waits for claims is only read. It runs in the system
    row scope: the task may land in a queue the caller cannot see (an overflow, the engine's next step), and push
    routing counts every candidate's claimed tasks.
    """
    with system_scope():
        return _task_insert(
            queue=queue,
            name=name,
            user=user,
            via_account=via_account,
            description=description,
            priority=priority,
            due_date=due_date,
            sla_hours=sla_hours,
            variables=variables,
            required_skills=required_skills,
            candidate_groups=candidate_groups,
            form_fields=form_fields,
            process_instance=process_instance,
            engine_task_id=engine_task_id,
            task_definition_key=task_definition_key,
        )


def _task_insert(
    *,
    queue: WorkflowQueue,
    name: str,
    user,
    via_account,
    description: str,
    priority: int,
    due_date: datetime | None,
    sla_hours: float | None,
    variables: dict | None,
    required_skills: list[str] | None,
    candidate_groups: list[str] | None,
    form_fields: list[dict] | None,
    process_instance,
    engine_task_id,
    task_definition_key: str,
) -> WorkflowTask:
    target, hops = queue, []
    if queue.assignment_mode == AssignmentMode.PUSH:
        planned = routing.overflow_target(queue)
        locked = queues_lock(queue_ids=[queue.pk, planned.pk])
        queue = locked[queue.pk]
        target, hops = routing.overflow_route(queue)  # again, on the locked row
        target = locked.get(target.pk) or queues_for_update().get(pk=target.pk)  # the chain changed in between
    now = timezone.now()
    task = WorkflowTask.objects.create(
        queue=target,
        name=name,
        description=description,
        priority=priority,
        due_date=due_date or due_date_for(target, priority, start=now, sla_hours=sla_hours),
        variables=variables or {},
        required_skills=sorted(set(required_skills or target.required_skills or [])),
        candidate_groups=candidate_groups or [target.queue_name],
        form_fields=form_fields or [],
        process_instance=process_instance,
        engine_task_id=engine_task_id,
        task_definition_key=task_definition_key,
        created_at=now,
    )
    new = {"queue": target.queue_name, "priority": priority, "status": TaskStatus.OPEN}
    comment = f"overflowed from {queue.queue_name}" if target.pk != queue.pk else ""
    # Why the task is where it is: on the CREATED event the overflow hops, or the push that found nobody with room;
    # on the CLAIMED event the push that chose its assignee.
    decision = why = None
    if target.assignment_mode == AssignmentMode.PUSH:
        decision = _push_decision(target, required_skills=task.required_skills, priority=priority)
        why = decision.explanation(queue=target.queue_name, overflow=hops)
    placed = why if decision is not None and decision.chosen is None else None
    if placed is None and target.pk != queue.pk:
        placed = {"kind": "overflow", "queue": target.queue_name, "overflow": hops}
    _history(task, TaskEventType.CREATED, user=user, via_account=via_account, new=new, comment=comment, routing=placed)
    if target.pk != queue.pk:
        signals.task_moved.send(
            sender=WorkflowTask,
            task=task,
            from_queue=queue.queue_name,
            to_queue=target.queue_name,
            user=user,
            reason=comment,
        )
    if decision is not None and decision.chosen is not None:
        _push(task, target, decision, user=user, via_account=via_account, why=why)
    return task


@transaction.atomic
@acting_for_user
def task_create(
    *,
    user,
    queue_name: str,
    name: str,
    via_account=None,
    description: str = "",
    priority: int = 50,
    due_date: datetime | None = None,
    variables: dict | None = None,
    required_skills: list[str] | None = None,
) -> WorkflowTask:
    """A standalone task in a queue (Flowable's newTask), for users who may work or supervise that queue."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name is required", fields={"name": ["This field is required."]})
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput("name is too long", fields={"name": [f"At most {MAX_NAME_LENGTH} characters."]})
    priority = _validate_priority(priority)
    allowed = queues_for(user=user, capability=Capability.WORK) | queues_for(user=user, capability=Capability.SUPERVISE)
    queue = allowed.filter(queue_name=queue_name).first()
    if queue is None:
        raise InvalidInput(
            f"no queue {queue_name!r} that you may work or supervise",
            fields={"queue": ["No queue by that name that you may work or supervise."]},
        )
    if queue.intake_paused:
        raise Conflict(f"queue {queue_name} is not taking new tasks", code="queue_paused")
    if due_date is not None and due_date <= timezone.now():
        raise InvalidInput("due_date must be in the future", fields={"due_date": ["Must be in the future."]})
    if variables is not None and not isinstance(variables, dict):
        raise InvalidInput("variables must be an object", fields={"variables": ["Must be an object."]})
    refuse_sealed_input(variables or {})
    return task_insert(
        queue=queue,
        name=name.strip(),
        user=user,
        via_account=via_account,
        description=description,
        priority=priority,
        due_date=due_date,
        variables=variables,
        required_skills=required_skills,
    )


# --- claiming ----------------------------------------------------------------------------------------------------


def task_claim_next(*, user, queue_names: list[str] | None = None, via_account=None) -> WorkflowTask | None:
    """Claim the best OPEN task across the caller's workable queues (or those of `queue_names` they may work).

    Effective priority (the priority plus any aging boost) first, then age, within the queues' express lanes'
    shares. One statement (flowable.claim_next_for_user → claim_next_task), so one round trip
    and its own transaction. SKIP LOCKED on tasks and on queue rows: concurrent claimers never take the same task,
    and a claim passes over a queue another claim is writing for the next best queue rather than queue behind it
    (it waits only when every candidate queue is busy). Queues at capacity and tasks needing skills the user
    lacks are passed over. None when nothing is available.
    """
    if user is None or not user.is_active:
        return None
    requested = list(queue_names) if queue_names else None
    with self_scoped_statement(user):  # the function acts for the user under row-level security: no round trip more
        claimed = list(
            WorkflowTask.objects.raw(
                "SELECT * FROM flowable.claim_next_for_user(%s, %s::text[], %s)",
                [user.pk, requested, via_account.pk if via_account else None],
            )
        )
    if not claimed:
        return None
    task = claimed[0]
    task.assignee = user  # spare the serializer a query for the user it already has
    return task


@transaction.atomic
@acting_for_user
def task_claim(*, user, task_id: int, via_account=None) -> WorkflowTask:
    """Claim a named task. Claiming one's own claimed task again changes nothing."""
    task = task_for_user(user=user, task_id=task_id, capability=Capability.WORK, for_update=True)
    if task.status == TaskStatus.CLAIMED and task.assignee_id == user.pk:
        return task
    if task.status == TaskStatus.CLAIMED:
        raise Conflict(f"task {task_id} is claimed by someone else", code="task_claimed")
    _require_state(task, TaskStatus.OPEN, action="claim")
    _require_not_suspended(task, action="claim")
    _require_skills(task, user)
    # The queue's row is locked by the update that counts the claim, and only if it has room: one statement.
    taken = WorkflowQueue.objects.filter(queue_name=task.queue_id, current_load__lt=F("max_capacity")).update(
        current_load=F("current_load") + 1
    )
    if not taken:
        raise Conflict(f"queue {task.queue_id} is at capacity", code="queue_at_capacity")
    task.status = TaskStatus.CLAIMED
    task.assignee = user
    task.claimed_at = timezone.now()
    task.save(update_fields=["status", "assignee", "claimed_at", "updated_at"])
    _history(
        task,
        TaskEventType.CLAIMED,
        user=user,
        via_account=via_account,
        old={"status": TaskStatus.OPEN, "assignee": None},
        new={"status": TaskStatus.CLAIMED, "assignee": user.get_username()},
        routing={"kind": "claim", "queue": task.queue_id, "chosen": user.get_username()},
    )
    return task


def _is_supervisor(user, task: WorkflowTask) -> bool:
    return may(user=user, capability=Capability.SUPERVISE, queue_name=task.queue_id)


@transaction.atomic
@acting_for_user
def task_release(*, user, task_id: int, via_account=None, comment: str = "") -> WorkflowTask:
    """Give a claimed task back to its queue: its holder may, and so may a supervisor of the queue."""
    task = task_for_user(user=user, task_id=task_id, capability=Capability.VIEW, for_update=True)
    _require_state(task, TaskStatus.CLAIMED, action="release")
    if task.assignee_id != user.pk and not _is_supervisor(user, task):
        raise Conflict(f"task {task_id} is held by someone else", code="task_claimed")
    previous = _username(task.assignee)
    task.status = TaskStatus.OPEN
    task.assignee = None
    task.claimed_at = None
    task.owner = None
    task.delegation_state = ""
    task.save(update_fields=["status", "assignee", "claimed_at", "owner", "delegation_state", "updated_at"])
    _adjust_load(task.queue_id, -1)
    _history(
        task,
        TaskEventType.RELEASED,
        user=user,
        via_account=via_account,
        comment=comment,
        old={"status": TaskStatus.CLAIMED, "assignee": previous},
        new={"status": TaskStatus.OPEN, "assignee": None},
    )
    return task


@transaction.atomic
@acting_for_user
def task_complete(
    *, user, task_id: int, variables: dict | None = None, comment: str = "", via_account=None
) -> WorkflowTask:
    """Finish a task the user holds, with its form variables; the process it belongs to moves on in the same transaction.

    The task's access is checked once, as it is locked; its process instance is locked (first, so that a parallel
    join cannot interleave) and read in one statement, for the engine's step. The step runs in the system row scope
    (the next tasks go wherever the model sends them), and the history rows of the whole call are one insert.
    """
    instance = process_instances_for_update().filter(pk=Subquery(_task_process_instance(task_id))).first()
    task = task_for_user(user=user, task_id=task_id, capability=Capability.WORK, for_update=True)
    if task.status == TaskStatus.OPEN:
        raise Conflict(f"claim task {task_id} before completing it", code="task_not_claimed")
    _require_state(task, TaskStatus.CLAIMED, action="complete")
    if task.assignee_id != user.pk:
        raise Conflict(f"task {task_id} is held by someone else", code="task_claimed")
    if task.delegation_state == "PENDING":
        raise Conflict(f"task {task_id} is delegated: resolve it instead", code="task_delegated")
    _require_not_suspended(task, action="complete")
    if instance is not None and instance.pk == task.process_instance_id:
        task.process_instance = instance  # the engine's step reads it from here rather than again
    cleaned = validate_task_variables(task.form_fields, variables)
    sensitive = sensitive_names(task.form_fields)
    sealed = seal_sensitive(sensitive, cleaned)
    now = timezone.now()
    task.status = TaskStatus.COMPLETED
    task.completed_at = now
    task.variables = {**task.variables, **sealed}
    task.save(update_fields=["status", "completed_at", "variables", "updated_at"])
    # Checked above: the rest is the system's (other tasks of the instance, next tasks, in any queue).
    with system_scope(), history_batched():
        if task.process_instance_id:
            # The engine may close the instance's other tasks (a boundary event, a joined branch): lock them now,
            # before this task's queue load changes, not after.
            list(
                tasks_for_update(
                    WorkflowTask.objects.filter(
                        process_instance_id=task.process_instance_id,
                        status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED],
                    ).exclude(pk=task.pk)
                ).values_list("pk", flat=True)
            )
        _adjust_load(task.queue_id, -1)
        _history(
            task,
            TaskEventType.COMPLETED,
            user=user,
            via_account=via_account,
            comment=comment,
            old={"status": TaskStatus.CLAIMED},
            new={"status": TaskStatus.COMPLETED, "variables": redact_sensitive(sensitive, cleaned)},
        )
        if task.process_instance_id:
            signals.task_completed.send(
                sender=WorkflowTask, task=task, variables=sealed, user=user, via_account=via_account
            )
    return task


def _task_process_instance(task_id: int):
    """The process instance id of a task, as a subquery (under the caller's row scope)."""
    return WorkflowTask.objects.filter(pk=task_id).values("process_instance_id")[:1]


# --- supervision -------------------------------------------------------------------------------------------------


def _supervised_task(*, user, task_id: int) -> WorkflowTask:
    return task_for_user(user=user, task_id=task_id, capability=Capability.SUPERVISE, for_update=True)


def _check_can_work(assignee: User, task: WorkflowTask, field: str) -> None:
    if not may(user=assignee, capability=Capability.WORK, queue_name=task.queue_id):
        raise InvalidInput(
            f"{assignee.get_username()} may not work queue {task.queue_id}",
            fields={field: [f"{assignee.get_username()} may not work queue {task.queue_id}."]},
        )
    missing = sorted(set(task.required_skills) - _user_skills(assignee))
    if missing:
        raise InvalidInput(
            f"{assignee.get_username()} lacks skills {', '.join(missing)}",
            fields={field: [f"Lacks the skills this task needs: {', '.join(missing)}."]},
        )


@transaction.atomic
@acting_for_user
def task_reassign(
    *, user, task_id: int, assignee, expected_assignee: str | None = None, via_account=None, comment: str = ""
) -> WorkflowTask:
    """A supervisor gives an open or claimed task to a caseworker who may work its queue.

    With `expected_assignee` (a username, or "" for an unassigned task) the reassignment happens only if the task
    is still as the supervisor saw it; otherwise 409, so a release or completion in between is not overridden.
    """
    task = _supervised_task(user=user, task_id=task_id)
    _require_state(task, TaskStatus.OPEN, TaskStatus.CLAIMED, action="reassign")
    if expected_assignee is not None and (_username(task.assignee) or "") != expected_assignee:
        raise Conflict(f"task {task_id} changed hands since you looked", code="task_changed")
    target = _active_user(assignee, field="assignee")
    _check_can_work(target, task, "assignee")
    old = {"status": task.status, "assignee": _username(task.assignee)}
    if task.status == TaskStatus.OPEN:
        _adjust_load(task.queue_id, +1)
        task.claimed_at = timezone.now()
    task.status = TaskStatus.CLAIMED
    task.assignee = target
    task.owner = None
    task.delegation_state = ""
    task.save(update_fields=["status", "assignee", "claimed_at", "owner", "delegation_state", "updated_at"])
    _history(
        task,
        TaskEventType.REASSIGNED,
        user=user,
        via_account=via_account,
        comment=comment,
        old=old,
        new={"status": TaskStatus.CLAIMED, "assignee": target.get_username()},
        routing={
            "kind": "reassign",
            "queue": task.queue_id,
            "by": user.get_username(),
            "chosen": target.get_username(),
            "previous": old["assignee"],
        },
    )
    return task


@transaction.atomic
@acting_for_user
def task_delegate(*, user, task_id: int, delegate, via_account=None, comment: str = "") -> WorkflowTask:
    """A supervisor hands a claimed task to a delegate; when the delegate resolves it, it returns to its holder."""
    task = _supervised_task(user=user, task_id=task_id)
    _require_state(task, TaskStatus.CLAIMED, action="delegate")
    if task.delegation_state == "PENDING":
        raise Conflict(f"task {task_id} is already delegated", code="task_delegated")
    target = _active_user(delegate, field="delegate")
    _check_can_work(target, task, "delegate")
    if target.pk == task.assignee_id:
        raise InvalidInput("the delegate already holds the task", fields={"delegate": ["Already holds the task."]})
    owner = task.assignee
    task.owner = owner
    task.assignee = target
    task.delegation_state = "PENDING"
    task.save(update_fields=["owner", "assignee", "delegation_state", "updated_at"])
    _history(
        task,
        TaskEventType.DELEGATED,
        user=user,
        via_account=via_account,
        comment=comment,
        old={"assignee": owner.get_username()},
        new={"assignee": target.get_username(), "owner": owner.get_username(), "delegation_state": "PENDING"},
        routing={
            "kind": "delegate",
            "queue": task.queue_id,
            "by": user.get_username(),
            "chosen": target.get_username(),
            "owner": owner.get_username(),
        },
    )
    return task


@transaction.atomic
@acting_for_user
def task_resolve(
    *, user, task_id: int, variables: dict | None = None, via_account=None, comment: str = ""
) -> WorkflowTask:
    """The delegate finishes their part; the task goes back to its owner with the delegate's variables."""
    task = task_for_user(user=user, task_id=task_id, capability=Capability.WORK, for_update=True)
    if task.delegation_state != "PENDING" or task.assignee_id != user.pk:
        raise Conflict(f"task {task_id} is not delegated to you", code="task_not_delegated")
    if variables is not None and not isinstance(variables, dict):
        raise InvalidInput("variables must be an object", fields={"variables": ["Must be an object."]})
    refuse_sealed_input(variables or {})
    owner = task.owner
    task.assignee = owner
    task.owner = None
    task.delegation_state = "RESOLVED"
    task.variables = {**task.variables, **seal_sensitive(sensitive_names(task.form_fields), variables or {})}
    task.save(update_fields=["assignee", "owner", "delegation_state", "variables", "updated_at"])
    _history(
        task,
        TaskEventType.RESOLVED,
        user=user,
        via_account=via_account,
        comment=comment,
        old={"assignee": user.get_username(), "delegation_state": "PENDING"},
        new={"assignee": owner.get_username(), "delegation_state": "RESOLVED"},
        routing={"kind": "resolve", "queue": task.queue_id, "by": user.get_username(), "chosen": owner.get_username()},
    )
    return task


def _move(task: WorkflowTask, target: WorkflowQueue, *, user, via_account, reason: str) -> dict:
    """Move an active task to another queue; a claimed task goes back to OPEN there. Returns the old values."""
    old = {"queue": task.queue_id, "status": task.status, "assignee": _username(task.assignee)}
    if task.status == TaskStatus.CLAIMED:
        _adjust_load(task.queue_id, -1)
    source = task.queue_id
    task.queue = target
    task.status = TaskStatus.OPEN
    task.assignee = None
    task.owner = None
    task.claimed_at = None
    task.delegation_state = ""
    task.candidate_groups = [target.queue_name]
    task.priority_boost = 0  # aging starts again in the new queue, under its settings (tasks/sla/aging.py)
    signals.task_moved.send(
        sender=WorkflowTask, task=task, from_queue=source, to_queue=target.queue_name, user=user, reason=reason
    )
    return old


def _configured_target(source: WorkflowQueue, target: WorkflowQueue) -> bool:
    """Whether the source queue's own configuration sends work to `target`: its overflow queue or an escalation
    rule's move_to_queue."""
    if source.overflow_queue_id == target.pk:
        return True
    try:
        levels = parse_escalation_rules(source.escalation_rules or [])
    except InvalidInput:
        return False  # rules that no longer parse send nothing anywhere
    return any(level.move_to_queue == target.queue_name for level in levels)


def _target_queue(queue_name: str, *, user, source: WorkflowQueue) -> WorkflowQueue:
    """The queue a supervisor moves work to: one they supervise, or one the source queue's configuration names."""
    queue = WorkflowQueue.objects.filter(queue_name=queue_name).first()
    if queue is None:
        raise InvalidInput(f"no queue {queue_name!r}", fields={"queue": ["No queue by that name."]})
    if (
        queue.pk != source.pk
        and not _configured_target(source, queue)
        and not may(user=user, capability=Capability.SUPERVISE, queue_name=queue_name)
    ):
        raise PermissionDenied(
            f"you may not move work into queue {queue_name}: you do not supervise it and it is not an escalation or "
            f"overflow target of {source.queue_name}",
            code="queue_not_supervised",
            fields={"queue": [f"You do not supervise {queue_name}."]},
        )
    return queue


@transaction.atomic
@acting_for_user
def task_escalate(
    *,
    user,
    task_id: int,
    priority: int | None = None,
    queue_name: str | None = None,
    reason: str = "",
    via_account=None,
) -> WorkflowTask:
    """A supervisor escalates: raise the priority and/or move the task to another queue; escalation_level + 1."""
    if priority is None and not queue_name:
        raise InvalidInput(
            "give a new priority, a queue, or both", fields={"priority": ["Give a priority or a queue."]}
        )
    task = _supervised_task(user=user, task_id=task_id)
    _require_state(task, TaskStatus.OPEN, TaskStatus.CLAIMED, action="escalate")
    old = {"priority": task.priority, "escalation_level": task.escalation_level}
    if priority is not None:
        priority = _validate_priority(priority)
        if priority < task.priority:
            raise InvalidInput(
                "escalation cannot lower the priority", fields={"priority": ["Must not be lower than now."]}
            )
        task.priority = priority
    moved = bool(queue_name and queue_name != task.queue_id)
    if moved:
        target = _target_queue(queue_name, user=user, source=task.queue)
        old.update(_move(task, target, user=user, via_account=via_account, reason=reason or "escalated"))
    task.escalation_level += 1
    # A move may take the task to a queue the supervisor cannot see (an escalation target): checked above.
    with system_scope() if moved else nullcontext():
        task.save()
        _history(
            task,
            TaskEventType.ESCALATED,
            user=user,
            via_account=via_account,
            comment=reason,
            old=old,
            new={
                "priority": task.priority,
                "escalation_level": task.escalation_level,
                "queue": task.queue_id,
                "status": task.status,
            },
        )
    return task


@transaction.atomic
@acting_for_user
def task_move(*, user, task_id: int, queue_name: str, reason: str = "", via_account=None) -> WorkflowTask:
    """A supervisor moves an active task to another queue, where it waits OPEN."""
    task = _supervised_task(user=user, task_id=task_id)
    _require_state(task, TaskStatus.OPEN, TaskStatus.CLAIMED, action="move")
    target = _target_queue(queue_name, user=user, source=task.queue)
    if target.pk == task.queue.pk:
        raise InvalidInput("the task is already in that queue", fields={"queue": ["Already in that queue."]})
    old = _move(task, target, user=user, via_account=via_account, reason=reason or "moved")
    with system_scope():  # the target may be a queue the supervisor cannot see (an overflow target): checked above
        task.save()
        _history(
            task,
            TaskEventType.MOVED,
            user=user,
            via_account=via_account,
            comment=reason,
            old=old,
            new={"queue": target.queue_name, "status": TaskStatus.OPEN, "assignee": None},
        )
    return task


@transaction.atomic
@acting_for_user
def task_change_priority(*, user, task_id: int, priority: int, reason: str = "", via_account=None) -> WorkflowTask:
    task = _supervised_task(user=user, task_id=task_id)
    _require_state(task, TaskStatus.OPEN, TaskStatus.CLAIMED, action="change the priority of")
    priority = _validate_priority(priority)
    old = {"priority": task.priority}
    task.priority = priority
    task.save(update_fields=["priority", "updated_at"])
    _history(
        task,
        TaskEventType.PRIORITY_CHANGED,
        user=user,
        via_account=via_account,
        comment=reason,
        old=old,
        new={"priority": priority},
    )
    return task


@transaction.atomic
@acting_for_user
def task_comment_add(*, user, task_id: int, comment: str, via_account=None) -> TaskHistory:
    task = task_for_user(user=user, task_id=task_id, capability=Capability.VIEW)
    if not isinstance(comment, str) or not comment.strip():
        raise InvalidInput("comment is empty", fields={"comment": ["This field is required."]})
    if "\x00" in comment:
        raise InvalidInput("comment has NUL characters", fields={"comment": ["NUL characters are not allowed."]})
    return _history(task, TaskEventType.COMMENTED, user=user, via_account=via_account, comment=comment.strip())


def task_close(task: WorkflowTask, *, status: str, user=None, reason: str = "") -> None:
    """Close an active task without completing it (process cancelled, boundary timer). The caller holds the locks:
    the task's, and its queue's (task_queues_lock), since a claimed task's queue load changes."""
    if task.status not in (TaskStatus.OPEN, TaskStatus.CLAIMED):
        return
    old = {"status": task.status, "assignee": _username(task.assignee)}
    if task.status == TaskStatus.CLAIMED:
        _adjust_load(task.queue_id, -1)
    task.status = status
    task.completed_at = timezone.now()
    task.save(update_fields=["status", "completed_at", "updated_at"])
    event = TaskEventType.ESCALATED if status == TaskStatus.ESCALATED else TaskEventType.CANCELLED
    _history(task, event, user=user, comment=reason, old=old, new={"status": status})


# --- queue maintenance -------------------------------------------------------------------------------------------


@transaction.atomic
@acting_for_user
def rebalance_queue_loads(*, dry_run: bool = False, queue_names: list[str] | None = None, user=None) -> list[dict]:
    """Move OPEN tasks out of queues at capacity into their overflow queue, as far as the overflow has room.

    Highest effective priority and oldest first (claim-next's order). `queue_names` limits the queues emptied; with `user` (a supervisor acting
    from admin) only queues whose source and overflow they both supervise are touched. Returns one line per move
    (queue from, queue to, count).

    The full queues and their overflow queues are locked together, in one statement, before any task: the moves
    then pass over tasks another transaction holds (SKIP LOCKED) rather than wait for them while holding queues.
    """
    moves = []
    full = WorkflowQueue.objects.filter(overflow_queue__isnull=False, current_load__gte=F("max_capacity"))
    if queue_names is not None:
        full = full.filter(queue_name__in=list(queue_names))
    if user is not None:
        supervised = queues_for(user=user, capability=Capability.SUPERVISE)
        full = full.filter(pk__in=supervised.values("pk"), overflow_queue__in=supervised.values("pk"))
    pairs = sorted(full.values_list("pk", "overflow_queue_id"))
    locked = queues_lock(queue_ids=[queue_id for pair in pairs for queue_id in pair])
    for source_id, overflow_id in pairs:
        queue = locked[source_id]
        if queue.current_load < queue.max_capacity or queue.overflow_queue_id != overflow_id:
            continue  # changed while we waited for the lock: the next run sees it as it is now
        target = locked[overflow_id]
        room = target.max_capacity - target.current_load
        if room <= 0 or target.intake_paused:
            continue
        ids = list(
            tasks_for_update(
                WorkflowTask.objects.filter(queue=queue, status=TaskStatus.OPEN).order_by(
                    "-effective_priority", "created_at", "task_id"
                ),
                skip_locked=True,
            ).values_list("pk", flat=True)[:room]
        )
        if not ids:
            continue
        moves.append({"from_queue": queue.queue_name, "to_queue": target.queue_name, "tasks": len(ids)})
        if dry_run:
            continue
        for task in WorkflowTask.objects.filter(pk__in=ids).select_related("queue"):
            old = _move(task, target, user=None, via_account=None, reason="rebalanced: queue at capacity")
            task.save()
            _history(
                task,
                TaskEventType.MOVED,
                user=None,
                comment="rebalanced: queue at capacity",
                old=old,
                new={"queue": target.queue_name, "status": TaskStatus.OPEN},
            )
    return moves
