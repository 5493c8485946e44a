"""What worker accounts do with external tasks: fetch and lock by topic, complete, fail, extend or give back a lock.

Access: an account needs the explicit permission tasks.work_external_tasks, held directly or through a group (no
superuser shortcut). External tasks belong to no queue, so the queue-keyed row scope of a request reaches none of
them (migration 0034's policies): after the permission check each service acts in the system scope. Only the
worker that holds an item's lock may complete it, fail it or extend its lock (409 otherwise); a lock that expired
still counts until another worker fetches the item. Every call leaves a history row naming the account, the
refused ones too. A BPMN error moves the instance along an error boundary event's path (external_task_bpmn_error).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.db.models import Q, Subquery
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, WorkflowError
from entitlements.row_scope import system_scope

from ..bpmn import engine
from ..bpmn.forms import refuse_sealed_input, seal_sensitive
from ..bpmn.workflows import _engine_error, _open_tasks, _store, definition_runtime
from ..locks import process_instances_for_update
from ..models import (
    ExternalTask,
    ExternalTaskEventType,
    ExternalTaskStatus,
    IncidentKind,
    IncidentStep,
    ProcessIncident,
    ProcessInstance,
    ProcessStatus,
)
from .items import external_tasks_for_update, history_append, return_to_pool
from .wakeups import WAKEUPS

WORK_PERMISSION = "work_external_tasks"
RETRY_PERMISSION = "change_externaltask"
MAX_WORKER_ID_LENGTH = 255
R = TypeVar("R")


class Unprocessable(WorkflowError):
    """The request is well formed but asks for what this engine cannot do."""

    code = "unprocessable"
    http_status = 422


@dataclass(frozen=True)
class TopicRequest:
    topic_name: str
    lock_duration_ms: int
    variables: list[str] | None = None  # None: every variable of the instance


@dataclass(frozen=True)
class LockedExternalTask:
    """An item as a worker gets it from fetch-and-lock."""

    external_task_id: int
    topic_name: str
    worker_id: str
    lock_expires_at: datetime
    activity_id: str
    engine_task_id: str
    process_instance_id: int
    process_definition_key: str
    process_definition_id: int
    business_key: str
    priority: int
    retries: int | None
    error_message: str
    error_details: str
    variables: dict


# --- access --------------------------------------------------------------------------------------------------


def _holds(user, *codenames: str) -> bool:
    """Whether `user` is active and holds one of the tasks app's permissions `codenames`, directly or through a
    group: explicitly, with no superuser shortcut (DESIGN: superusers get none unless access.py says so)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return Permission.objects.filter(
        Q(user=user) | Q(group__user=user), codename__in=codenames, content_type__app_label="tasks"
    ).exists()


def may_work_external_tasks(user) -> bool:
    """Whether `user` is a worker account: explicitly granted tasks.work_external_tasks."""
    return _holds(user, WORK_PERMISSION)


def may_retry_external_tasks(user) -> bool:
    """Workers, and people granted tasks.change_externaltask (the console's "retry"), may give retries back."""
    return _holds(user, WORK_PERMISSION, RETRY_PERMISSION)


def _require_worker(user) -> None:
    if not may_work_external_tasks(user):
        raise PermissionDenied(
            "this account may not work external tasks: it needs the tasks.work_external_tasks permission",
            code="external_tasks_forbidden",
        )


def _require_worker_id(worker_id) -> str:
    if not isinstance(worker_id, str) or not worker_id.strip() or len(worker_id) > MAX_WORKER_ID_LENGTH:
        raise InvalidInput(
            "workerId is required (text, at most 255 characters)", fields={"workerId": ["This field is required."]}
        )
    return worker_id


def _duration_ms(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{field} must be a positive number of milliseconds", fields={field: ["Must be > 0."]})
    return value


# --- fetch and lock ------------------------------------------------------------------------------------------

# One statement: pick the free items of the topics (SKIP LOCKED: concurrent workers never wait on or share a row),
# lock them for this worker, and append their history. Times come from the caller, not now(): a long poll runs
# several fetches in one request transaction, whose now() stands still.
#
# Its shape holds whatever the planner believes about the tables' sizes. Right after a burst of new items the
# statistics may still say the tables are empty (autovacuum has not analyzed them yet); the plain join of items and
# instances then ran as a nested loop reading every instance for every item, seconds a fetch with 16 workers at
# 2,000 items, past the statement timeout. So each topic is probed by its own ordered scan of
# idx_external_tasks_fetch (the topic is bound, so the index gives the order: no sort, and the probe stops after
# max_tasks rows it could lock), the instance's status is a lookup by its key per probed row (a scalar subquery is
# never turned into a join), and the update finds its rows by key. With several topics, each probe locks up to
# max_tasks rows and the best max_tasks of all of them are taken; the rest are unlocked at commit, a moment later.
FETCH_AND_LOCK_SQL = """
WITH topics AS (
    SELECT * FROM unnest(%(topic_names)s::text[], %(lock_ms)s::bigint[]) AS t(topic_name, lock_ms)
), probed AS (
    SELECT e.external_task_id, e.priority, e.created_at
      FROM topics t
     CROSS JOIN LATERAL (
            SELECT e.external_task_id, e.priority, e.created_at
              FROM flowable.external_tasks e
             WHERE e.topic_name = t.topic_name
               AND e.status = 'ACTIVE'
               AND (e.lock_expires_at IS NULL OR e.lock_expires_at <= %(now)s)
               AND (e.retries IS NULL OR e.retries > 0)
               AND (e.retry_at IS NULL OR e.retry_at <= %(now)s)
               AND (SELECT p.status FROM flowable.process_instances p
                     WHERE p.process_instance_id = e.process_instance_id) = 'RUNNING'
             ORDER BY e.priority DESC, e.created_at, e.external_task_id
             LIMIT %(max_tasks)s
               FOR UPDATE OF e SKIP LOCKED
           ) e
), candidates AS (
    SELECT external_task_id FROM probed
     ORDER BY priority DESC, created_at, external_task_id
     LIMIT %(max_tasks)s
), locked AS (
    UPDATE flowable.external_tasks e
       SET worker_id = %(worker_id)s, locked_by_id = %(user_id)s,
           lock_expires_at = %(now)s + t.lock_ms * interval '1 millisecond', updated_at = %(now)s
      FROM topics t
     WHERE e.external_task_id = ANY (ARRAY(SELECT external_task_id FROM candidates))
       AND t.topic_name = e.topic_name
 RETURNING e.external_task_id, e.process_instance_id, e.topic_name, e.lock_expires_at, e.activity_id,
           e.engine_task_id, e.priority, e.retries, e.error_message, e.error_details, e.created_at
), logged AS (
    INSERT INTO flowable.external_task_history
           (external_task_id, event_type, actor_id, worker_id, new_values, created_at)
    SELECT external_task_id, 'LOCKED', %(user_id)s, %(worker_id)s,
           jsonb_build_object('lock_expires_at', lock_expires_at), %(now)s
      FROM locked
)
SELECT * FROM locked ORDER BY priority DESC, created_at, external_task_id
"""


def external_tasks_fetch_and_lock(
    *,
    user,
    worker_id: str,
    topics: list[TopicRequest],
    max_tasks: int,
    async_response_timeout_ms: int = 0,
) -> list[LockedExternalTask]:
    """Lock up to `max_tasks` free items of `topics` for `worker_id`, best priority first, oldest first.

    With `async_response_timeout_ms`, wait (long polling, at most EXTERNAL_TASK_LONG_POLL_MAX_SECONDS) until an
    item is there: a NOTIFY from the item's insert wakes the wait (tasks/external/wakeups.py), and it looks again
    every EXTERNAL_TASK_LONG_POLL_RECHECK_SECONDS for locks that expired meanwhile. The wait holds no row lock.
    """
    _require_worker(user)
    _require_worker_id(worker_id)
    if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 0:
        raise InvalidInput("maxTasks must be a whole number, 0 or more", fields={"maxTasks": ["Must be >= 0."]})
    max_tasks = min(max_tasks, settings.EXTERNAL_TASK_MAX_TASKS_PER_FETCH)
    if not topics or max_tasks == 0:
        return []
    for topic in topics:
        _duration_ms(topic.lock_duration_ms, "lockDuration")
    wait = min(max(async_response_timeout_ms or 0, 0) / 1000, settings.EXTERNAL_TASK_LONG_POLL_MAX_SECONDS)
    deadline = time.monotonic() + wait
    while True:
        since = WAKEUPS.generation() if wait else None
        locked = _fetch_and_lock_once(user=user, worker_id=worker_id, topics=topics, max_tasks=max_tasks)
        left = deadline - time.monotonic()
        if locked or left <= 0:
            return locked
        WAKEUPS.wait(since, timeout=min(left, settings.EXTERNAL_TASK_LONG_POLL_RECHECK_SECONDS))


@transaction.atomic
def _fetch_and_lock_once(*, user, worker_id: str, topics: list[TopicRequest], max_tasks: int):
    now = timezone.now()
    lock_ms = {t.topic_name: t.lock_duration_ms for t in topics}  # a topic named twice: its last request counts
    with system_scope(), connection.cursor() as cursor:
        cursor.execute(
            FETCH_AND_LOCK_SQL,
            {
                "topic_names": list(lock_ms),
                "lock_ms": list(lock_ms.values()),
                "now": now,
                "max_tasks": max_tasks,
                "worker_id": worker_id,
                "user_id": user.pk,
            },
        )
        columns = [c.name for c in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        if not rows:
            return []
        instances = {
            pk: (definition_id, business_key, variables)
            for pk, definition_id, business_key, variables in ProcessInstance.objects.filter(
                pk__in={row["process_instance_id"] for row in rows}
            ).values_list("pk", "definition_id", "business_key", "variables")
        }
    wanted = {t.topic_name: t.variables for t in topics}
    locked = []
    for row in rows:
        definition_id, business_key, variables = instances[row["process_instance_id"]]
        runtime = definition_runtime(definition_id)
        names = wanted.get(row["topic_name"])
        locked.append(
            LockedExternalTask(
                external_task_id=row["external_task_id"],
                topic_name=row["topic_name"],
                worker_id=worker_id,
                lock_expires_at=row["lock_expires_at"],
                activity_id=row["activity_id"],
                engine_task_id=str(row["engine_task_id"]),
                process_instance_id=row["process_instance_id"],
                process_definition_key=runtime.process_key,
                process_definition_id=definition_id,
                business_key=business_key,
                priority=row["priority"],
                retries=row["retries"],
                error_message=row["error_message"],
                error_details=row["error_details"],
                # Sensitive form values stay sealed for people: a worker gets the rest.
                variables={
                    name: value
                    for name, value in (variables or {}).items()
                    if name not in runtime.sensitive_names and (names is None or name in names)
                },
            )
        )
    return locked


# --- the calls on one item -----------------------------------------------------------------------------------


def _audited(*, user, external_task_id: int, worker_id: str, action: str, call: Callable[[], R]) -> R:
    """Run `call` (one transaction); when the item's state refuses it, record the refusal and raise."""
    _require_worker(user)
    try:
        return call()
    except (Conflict, Unprocessable) as refusal:
        with transaction.atomic(), system_scope():
            item = ExternalTask.objects.filter(pk=external_task_id).first()
            if item is not None:
                history_append(
                    item,
                    ExternalTaskEventType.REFUSED,
                    user=user,
                    worker_id=worker_id,
                    action=action,
                    code=refusal.code,
                )
        raise


def _instance_of_item_for_update(external_task_id: int) -> ProcessInstance | None:
    """The item's process instance, locked first (tasks/locks.py: instance, then task); None when no such item."""
    return (
        process_instances_for_update()
        .filter(pk=Subquery(ExternalTask.objects.filter(pk=external_task_id).values("process_instance_id")[:1]))
        .first()
    )


def _locked_item(external_task_id: int) -> ExternalTask:
    item = external_tasks_for_update().filter(pk=external_task_id).first()
    if item is None:
        raise NotFound(f"external task {external_task_id} not found", code="external_task_not_found")
    if item.status != ExternalTaskStatus.ACTIVE:
        raise Conflict(f"external task {external_task_id} is {item.status.lower()}", code="external_task_not_active")
    return item


def _require_lock_holder(item: ExternalTask, worker_id: str) -> None:
    if item.lock_expires_at is None or item.worker_id != worker_id:
        holder = f"held by worker '{item.worker_id}'" if item.lock_expires_at is not None else "not locked"
        raise Conflict(
            f"external task {item.pk} is {holder}, not by '{worker_id}'", code="external_task_locked_by_other"
        )


def external_task_complete(*, user, external_task_id: int, worker_id: str, variables: dict | None = None):
    """Complete an item the worker holds: the instance moves on in the same transaction (instance, then item)."""
    _require_worker_id(worker_id)
    variables = variables or {}
    if not isinstance(variables, dict):
        raise InvalidInput("variables must be an object", fields={"variables": ["Must be an object."]})
    refuse_sealed_input(variables)
    return _audited(
        user=user,
        external_task_id=external_task_id,
        worker_id=worker_id,
        action="complete",
        call=lambda: _complete(user=user, external_task_id=external_task_id, worker_id=worker_id, variables=variables),
    )


def _held_item_of_running_instance(external_task_id: int, worker_id: str):
    """The item's instance (locked, running), the item (locked, held by `worker_id`) and its definition's runtime."""
    instance = _instance_of_item_for_update(external_task_id)
    item = _locked_item(external_task_id)
    _require_lock_holder(item, worker_id)
    if instance.status != ProcessStatus.RUNNING:
        raise Conflict(f"process {instance.pk} is {instance.status.lower()}", code="process_not_running")
    return instance, item, definition_runtime(instance.definition_id)


@transaction.atomic
def _complete(*, user, external_task_id: int, worker_id: str, variables: dict) -> ExternalTask:
    with system_scope():  # the caller is a worker account (checked); its step is the engine's
        instance, item, runtime = _held_item_of_running_instance(external_task_id, worker_id)
        try:
            run = engine.complete_external_task(
                spec=runtime.spec,
                state=instance.engine_state,
                engine_task_id=str(item.engine_task_id),
                variables=seal_sensitive(set(runtime.sensitive_names), variables),
                now=timezone.now(),
            )
        except engine.EngineError as exc:
            raise _engine_error(exc) from exc
        item.status = ExternalTaskStatus.COMPLETED
        item.completed_at = timezone.now()
        item.lock_expires_at = None
        item.save(update_fields=["status", "completed_at", "lock_expires_at", "updated_at"])
        history_append(
            item, ExternalTaskEventType.COMPLETED, user=user, worker_id=worker_id, variables=sorted(variables)
        )
        _store(instance, run)
        _open_tasks(instance, run, user=user, via_account=None)
    return item


def external_task_fail(
    *,
    user,
    external_task_id: int,
    worker_id: str,
    error_message: str = "",
    error_details: str = "",
    retries: int,
    retry_timeout_ms: int = 0,
) -> ExternalTask:
    """Report a failure: the lock is released, the item is fetched again after `retry_timeout_ms` while `retries`
    is above 0; at 0 it stays out of the pool and its instance gets an incident (admin: retry)."""
    _require_worker_id(worker_id)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidInput("retries must be a whole number, 0 or more", fields={"retries": ["Must be >= 0."]})
    if isinstance(retry_timeout_ms, bool) or not isinstance(retry_timeout_ms, int) or retry_timeout_ms < 0:
        raise InvalidInput("retryTimeout must be 0 or more milliseconds", fields={"retryTimeout": ["Must be >= 0."]})
    return _audited(
        user=user,
        external_task_id=external_task_id,
        worker_id=worker_id,
        action="failure",
        call=lambda: _fail(
            user=user,
            external_task_id=external_task_id,
            worker_id=worker_id,
            error_message=str(error_message or ""),
            error_details=str(error_details or ""),
            retries=retries,
            retry_timeout_ms=retry_timeout_ms,
        ),
    )


@transaction.atomic
def _fail(*, user, external_task_id, worker_id, error_message, error_details, retries, retry_timeout_ms):
    with system_scope():
        item = _locked_item(external_task_id)
        _require_lock_holder(item, worker_id)
        now = timezone.now()
        item.retries = retries
        item.error_message = error_message
        item.error_details = error_details
        item.lock_expires_at = None
        item.retry_at = now + timedelta(milliseconds=retry_timeout_ms) if retry_timeout_ms else None
        item.save(
            update_fields=["retries", "error_message", "error_details", "lock_expires_at", "retry_at", "updated_at"]
        )
        history_append(
            item,
            ExternalTaskEventType.FAILED,
            user=user,
            worker_id=worker_id,
            error_message=error_message,
            retries=retries,
            retry_timeout_ms=retry_timeout_ms,
        )
        if retries == 0:
            ProcessIncident.objects.create(
                process_instance_id=item.process_instance_id,
                external_task=item,
                step=IncidentStep.EXTERNAL_TASK,
                kind=IncidentKind.EXTERNAL_TASK_FAILED,
                element_id=item.activity_id,
                message=error_message or "the external task failed with no retries left",
            )
    return item


MAX_ERROR_CODE_LENGTH = 255


def external_task_bpmn_error(
    *,
    user,
    external_task_id: int,
    worker_id: str,
    error_code: str,
    error_message: str = "",
    variables: dict | None = None,
) -> ExternalTask:
    """Raise the BPMN error `error_code` at an item the worker holds (Camunda's handleBpmnError): the nearest error
    boundary event catching the code (on the service task, or on a subprocess around it) interrupts it and the
    instance follows the boundary event's path, with `variables` merged, in one transaction (instance, then item).

    An error nothing catches is refused, 422 bpmn_error_not_caught, and nothing changes: the worker still holds
    the item and may report a failure (an incident when no retries are left) instead. Camunda would end the
    instance silently there; a refusal the worker sees is kept rather than an instance that vanishes.
    """
    _require_worker_id(worker_id)
    if not isinstance(error_code, str) or not error_code.strip() or len(error_code) > MAX_ERROR_CODE_LENGTH:
        raise InvalidInput(
            f"errorCode is required (text, at most {MAX_ERROR_CODE_LENGTH} characters)",
            fields={"errorCode": ["This field is required."]},
        )
    variables = variables or {}
    if not isinstance(variables, dict):
        raise InvalidInput("variables must be an object", fields={"variables": ["Must be an object."]})
    refuse_sealed_input(variables)
    return _audited(
        user=user,
        external_task_id=external_task_id,
        worker_id=worker_id,
        action="bpmn-error",
        call=lambda: _throw(
            user=user,
            external_task_id=external_task_id,
            worker_id=worker_id,
            error_code=error_code.strip(),
            error_message=str(error_message or ""),
            variables=variables,
        ),
    )


@transaction.atomic
def _throw(*, user, external_task_id: int, worker_id: str, error_code: str, error_message: str, variables: dict):
    with system_scope():  # the caller is a worker account (checked); its step is the engine's
        instance, item, runtime = _held_item_of_running_instance(external_task_id, worker_id)
        try:
            run = engine.throw_error(
                spec=runtime.spec,
                state=instance.engine_state,
                engine_task_id=str(item.engine_task_id),
                error_code=error_code,
                error_message=error_message,
                variables=seal_sensitive(set(runtime.sensitive_names), variables),
                now=timezone.now(),
            )
        except engine.ErrorNotCaught as exc:
            raise Unprocessable(
                f"BPMN error '{error_code}' is not caught: no error boundary event on external task "
                f"'{item.activity_id}' or around it catches that code; report a failure instead",
                code="bpmn_error_not_caught",
            ) from exc
        except engine.EngineError as exc:
            raise _engine_error(exc) from exc
        # Done by the error, not cancelled: the engine's sync below closes only items still active.
        item.status = ExternalTaskStatus.COMPLETED
        item.completed_at = timezone.now()
        item.lock_expires_at = None
        item.save(update_fields=["status", "completed_at", "lock_expires_at", "updated_at"])
        history_append(
            item,
            ExternalTaskEventType.BPMN_ERROR,
            user=user,
            worker_id=worker_id,
            error_code=error_code,
            error_message=error_message,
            variables=sorted(variables),
        )
        _store(instance, run)
        _open_tasks(instance, run, user=user, via_account=None)
    return item


def external_task_extend_lock(*, user, external_task_id: int, worker_id: str, new_duration_ms: int) -> ExternalTask:
    """Lock the item for `new_duration_ms` from now; only the worker that holds it."""
    _require_worker_id(worker_id)
    _duration_ms(new_duration_ms, "newDuration")

    @transaction.atomic
    def extend():
        with system_scope():
            item = _locked_item(external_task_id)
            _require_lock_holder(item, worker_id)
            item.lock_expires_at = timezone.now() + timedelta(milliseconds=new_duration_ms)
            item.save(update_fields=["lock_expires_at", "updated_at"])
            history_append(
                item,
                ExternalTaskEventType.LOCK_EXTENDED,
                user=user,
                worker_id=worker_id,
                lock_expires_at=item.lock_expires_at.isoformat(),
            )
        return item

    return _audited(
        user=user, external_task_id=external_task_id, worker_id=worker_id, action="extend-lock", call=extend
    )


def external_task_unlock(*, user, external_task_id: int) -> ExternalTask:
    """Release the item's lock, whoever holds it (Camunda's unlock): it is free at once."""

    @transaction.atomic
    def unlock():
        with system_scope():
            item = _locked_item(external_task_id)
            previous = item.worker_id
            item.lock_expires_at = None
            item.worker_id = ""
            item.save(update_fields=["lock_expires_at", "worker_id", "updated_at"])
            history_append(item, ExternalTaskEventType.UNLOCKED, user=user, previous_worker_id=previous)
        return item

    return _audited(user=user, external_task_id=external_task_id, worker_id="", action="unlock", call=unlock)


def external_task_retry(*, user, external_task_id: int, retries: int = 1) -> ExternalTask:
    """Give an item retries and return it to the pool (its open incident resolved): the admin's "retry"."""
    if not may_retry_external_tasks(user):
        raise PermissionDenied(
            "retrying external tasks needs the tasks.change_externaltask permission", code="external_tasks_forbidden"
        )
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise InvalidInput("retries must be 1 or more", fields={"retries": ["Must be >= 1."]})

    @transaction.atomic
    def retry():
        with system_scope():
            item = _locked_item(external_task_id)
            return_to_pool(item, retries=retries, user=user)
        return item

    return retry()
