"""Call activities as process instances of their own: a child row linked to its caller.

Why a child row rather than SpiffWorkflow's default (the called process run as a subworkflow inside the caller's
engine state): the child's user tasks are ordinary queue tasks of an ordinary instance, so queues, history, incidents,
suspend and the console see it as any other process; it runs the called definition's own version (the latest active
one when it starts, or the pinned one) with that version's SLA configuration, rather than a copy frozen into the
caller at the caller's deploy; and a definition called by many stays one definition. The caller's engine only waits
in the call activity (call_activity.py), and continues when the child ends.

Lock order: a step of the child locks the child, then (when it ends) its caller; cancelling a caller locks it, then
its children.
"""

from __future__ import annotations

from uuid import UUID

from django.db import transaction
from django.utils import timezone

from core.errors import Conflict, InvalidInput
from tasks.locks import process_instances_for_update, task_queues_lock, tasks_for_update
from tasks.models import (
    IncidentKind,
    IncidentStep,
    ProcessIncident,
    ProcessInstance,
    ProcessStatus,
    TaskStatus,
    WorkflowDefinition,
    WorkflowTask,
)
from tasks.services import task_close

from . import engine
from .forms import seal_sensitive


class CalledProcessMissing(engine.EngineError):
    """The definition a call activity names is not deployed (or not active)."""


def called_definition(*, process_key: str, version: int | None) -> WorkflowDefinition | None:
    """The definition a call activity runs: the pinned version, or the latest active one."""
    definitions = WorkflowDefinition.objects.filter(process_key=process_key).defer("bpmn_xml", "engine_spec")
    if version is not None:
        return definitions.filter(version=version).first()
    return definitions.filter(is_active=True).order_by("-version").first()


def check_called_deployed(parsed: engine.ParsedDefinition) -> None:
    """Refuse a deploy whose call activities name a definition that is not deployed (a process may call itself)."""
    for element_id, call in parsed.spec.get("call_activities", {}).items():
        if call["called_element"] == parsed.process_key and call["version"] is None:
            continue
        if called_definition(process_key=call["called_element"], version=call["version"]) is None:
            what = call["called_element"] + (f" version {call['version']}" if call["version"] else "")
            detail = f"call activity {element_id} calls {what}, which is not deployed"
            raise InvalidInput(detail, code="unknown_called_process", fields={"bpmn_xml": [detail]})


def calls_follow(instance: ProcessInstance, run: engine.EngineRun, *, user, via_account, raise_errors: bool) -> None:
    """After a step of `instance`: start a child for each call activity waiting without one, and cancel the children
    of call activities the engine closed (an interrupting timer).

    A child that cannot start (its definition is not deployed, its first step fails) leaves the call activity waiting
    and an open incident on `instance`, whose retry tries again; with `raise_errors` (the timer sweep and the retry,
    which record incidents themselves) the error is raised instead.
    """
    from .workflows import definition_runtime

    if run.closed_task_ids:
        closed = ProcessInstance.objects.filter(
            parent_instance=instance,
            parent_engine_task_id__in=run.closed_task_ids,
            status__in=[ProcessStatus.RUNNING, ProcessStatus.SUSPENDED],
        )
        for child in process_instances_for_update(closed):
            instance_cancel(child, user=user, reason="closed by the calling process")
    if not run.ready_calls:
        return
    started = {
        str(task_id)
        for task_id in ProcessInstance.objects.filter(
            parent_instance=instance, parent_engine_task_id__in=[call.engine_task_id for call in run.ready_calls]
        ).values_list("parent_engine_task_id", flat=True)
    }
    for call in run.ready_calls:
        if call.engine_task_id in started:
            continue
        try:
            with transaction.atomic():
                _child_start(instance, call, user=user, via_account=via_account, runtime_of=definition_runtime)
        except engine.EngineError as exc:
            if raise_errors:
                raise
            ProcessIncident.objects.create(
                process_instance=instance,
                step=IncidentStep.FIRE_TIMERS,  # its retry runs the waiting steps again, this one among them
                kind=IncidentKind.ENGINE_ERROR,
                element_id=exc.element_id or call.element_id,
                message=exc.detail,
            )


def _child_start(parent: ProcessInstance, call: engine.ReadyCall, *, user, via_account, runtime_of) -> None:
    from .workflows import _open_tasks, _store

    definition = called_definition(process_key=call.called_element, version=call.version)
    if definition is None:
        what = call.called_element + (f" version {call.version}" if call.version else "")
        raise CalledProcessMissing(f"the called process {what} is not deployed", element_id=call.element_id)
    runtime = runtime_of(definition.pk)
    run = engine.start(
        spec=runtime.spec, variables=seal_sensitive(runtime.sensitive_names, call.variables), now=timezone.now()
    )
    child = ProcessInstance.objects.create(
        definition=definition,
        business_key=parent.business_key,
        variables=run.variables,
        engine_state=run.state,
        started_by=parent.started_by,
        next_timer_due_at=run.next_timer_due_at,
        parent_instance=parent,
        parent_engine_task_id=UUID(call.engine_task_id),
    )
    _open_tasks(child, run, user=user, via_account=via_account)
    if run.completed:
        _store(child, run)


def return_to_caller(*, instance: ProcessInstance, **signal) -> None:
    """Receives tasks.signals.process_completed: a child that ended completes its caller's call activity with its
    variables, and the caller runs on (its next tasks are the system's: no user)."""
    from .workflows import _engine_error, _open_tasks, _store, definition_runtime

    if instance.parent_instance_id is None:
        return
    caller = process_instances_for_update().get(pk=instance.parent_instance_id)
    if caller.status != ProcessStatus.RUNNING:
        raise Conflict(
            f"process {caller.pk}, which called this one, is {caller.status.lower()}", code="caller_not_running"
        )
    runtime = definition_runtime(caller.definition_id)
    try:
        run = engine.complete_call(
            spec=runtime.spec,
            state=caller.engine_state,
            engine_task_id=str(instance.parent_engine_task_id),
            variables=instance.variables,
            now=timezone.now(),
        )
    except engine.EngineError as exc:
        raise _engine_error(exc) from exc
    _store(caller, run)
    _open_tasks(caller, run, user=None, via_account=None)


def instance_cancel(instance: ProcessInstance, *, user, reason: str) -> None:
    """Cancel a locked instance, its open tasks and, first, its running children. No access check: callers check."""
    from .workflows import definition_runtime

    children_cancel(instance, user=user, reason=reason)
    run = engine.cancel(spec=definition_runtime(instance.definition_id).spec, state=instance.engine_state)
    tasks = list(
        tasks_for_update(WorkflowTask.objects.filter(process_instance=instance, status__in=["OPEN", "CLAIMED"]))
    )
    task_queues_lock(tasks)
    for task in tasks:
        task_close(task, status=TaskStatus.CANCELLED, user=user, reason=reason)
    instance.engine_state = run.state
    instance.status = ProcessStatus.CANCELLED
    instance.ended_at = timezone.now()
    instance.next_timer_due_at = None
    instance.save()


def children_cancel(instance: ProcessInstance, *, user, reason: str) -> None:
    """Cancel the running children of `instance` (being cancelled), and theirs."""
    children = ProcessInstance.objects.filter(
        parent_instance=instance, status__in=[ProcessStatus.RUNNING, ProcessStatus.SUSPENDED]
    )
    for child in process_instances_for_update(children):
        instance_cancel(child, user=user, reason=reason)
