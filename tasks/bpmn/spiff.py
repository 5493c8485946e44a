"""SpiffWorkflow as this engine runs it: scripts and expressions evaluated in the sandbox's bounded child
processes, timers that read the caller's clock instead of the wall clock, and the serializer that stores specs
and instance states in SpiffWorkflow's own format."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import SpiffBpmnTaskConverter

from . import multi_instance, script_sandbox
from .dmn import DecisionTask
from .errors import ScriptError, ScriptLimitExceeded
from .script_sandbox import unsafe_source

_ISO_LITERAL_SHAPE = re.compile(r"P[0-9A-Z.,]+|\d{4}-\d\d-\d\d([T ][0-9:.]+)?(Z|[+-][0-9:]+)?")


# --- the expression sandbox ---------------------------------------------------------------------------------


class _BoundedEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow's script environment, evaluating in the bounded child processes of tasks/bpmn/script_sandbox.py.

    Behaves as SpiffWorkflow's TaskDataEnvironment (a script's globals are the task data; it leaves no
    callables behind), for every caller: SpiffWorkflow also calls the environment directly, past the engine.
    """

    def evaluate(self, expression, context, external_context=None):
        return script_sandbox.default_pool().evaluate(expression, context, external_context or {})

    def execute(self, script, context, external_context=None):
        left = script_sandbox.default_pool().execute(script, context, external_context or {})
        context.clear()
        context.update(left)
        return True

    def call_service(self, context, **kwargs):
        raise script_sandbox.ScriptRefused("service tasks are not supported")


class SandboxedScriptEngine(PythonScriptEngine):
    """Runs conditions, timer expressions and scripts with SAFE_BUILTINS only, bounded in CPU time and memory,
    and carries the caller's clock (and, back, the signals thrown in one engine call)."""

    def __init__(self, *, now: datetime) -> None:
        super().__init__(environment=_BoundedEnvironment())
        self.now = now
        # Names of the signals the instance's throw events threw during this engine call, for the services to
        # broadcast to other instances (the engine is handed one instance at a time).
        self.thrown_signals: list[str] = []
        # The definition's event subprocesses (ParsedDefinition.spec["event_subprocesses"]), for the engine's steps
        # to interrupt the process when an interrupting one starts (tasks/bpmn/event_subprocesses.py).
        self.event_subprocesses: dict = {}

    def evaluate(self, task, expression, external_context=None):
        self._check(task, expression, "eval")
        # A multi-instance completion condition also reads Camunda's instance counts (multi_instance.py).
        external_context = {**multi_instance.counters(task, expression), **(external_context or {})}
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except script_sandbox.LimitExceeded as exc:
            raise self._limit_error(task, f"expression {expression.strip()!r}", exc) from None
        except script_sandbox.ScriptRaised as exc:
            raise ScriptError(
                f"expression {expression.strip()!r} failed: {exc.type_name}: {exc.message}", element_id=bpmn_id(task)
            ) from None
        except script_sandbox.ScriptRefused as exc:
            raise ScriptError(f"refused: {exc}", element_id=bpmn_id(task)) from None

    def execute(self, task, script, external_context=None):
        self._check(task, script, "exec")
        try:
            self.environment.execute(script, task.data, external_context or {})
        except script_sandbox.LimitExceeded as exc:
            raise self._limit_error(task, "script", exc) from None
        except script_sandbox.ScriptRaised as exc:
            raise ScriptError(f"script failed: {exc.type_name}: {exc.message}", element_id=bpmn_id(task)) from None
        except script_sandbox.ScriptRefused as exc:
            raise ScriptError(str(exc), element_id=bpmn_id(task)) from None
        return True

    def call_service(self, task, **kwargs):
        raise ScriptError("service tasks are not supported", element_id=bpmn_id(task))

    @staticmethod
    def _check(task, source: str, mode: str) -> None:
        problem = unsafe_source(source, mode)
        if problem is not None:
            raise ScriptError(f"refused: {problem[0]}", element_id=bpmn_id(task))

    @staticmethod
    def _limit_error(task, what: str, exc: script_sandbox.LimitExceeded) -> ScriptLimitExceeded:
        return ScriptLimitExceeded(f"{what} {exc.detail}", element_id=bpmn_id(task), kind=exc.kind)


def bpmn_id(task) -> str | None:
    return getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name


# --- timers on an injected clock ----------------------------------------------------------------------------


def looks_like_timer_literal(text: str) -> bool:
    """Whether `text` is meant as an ISO 8601 literal, as BPMN editors write them (PT48H), not an expression.

    Text shaped like a literal counts as one even if malformed, so that a typo such as PT48X is refused at
    deploy time instead of being read as a variable name.
    """
    return _ISO_LITERAL_SHAPE.fullmatch(text) is not None


def timer_literal_error(text: str, *, duration: bool) -> str | None:
    """Why `text` is not a valid ISO 8601 duration (or date-time), or None when it is."""
    try:
        if duration:
            TimerEventDefinition.parse_iso_duration(text)
        else:
            as_utc(text)
    except Exception:  # SpiffWorkflow's duration parser raises a bare Exception
        return f"'{text}' is not a valid ISO 8601 {'duration, e.g. PT48H' if duration else 'date-time'}"
    return None


def as_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    # SpiffWorkflow reads naive times in the server's zone; a model must not mean different things per server.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _clock(task) -> datetime:
    return task.workflow.script_engine.now


def _timer_text(task, expression: str, *, duration: bool) -> str:
    """The ISO 8601 text a timer means: its literal, or what its expression gives; checked either way."""
    text = expression.strip()
    if not looks_like_timer_literal(text):
        text = task.workflow.script_engine.evaluate(task, expression)
        text = text.strip() if isinstance(text, str) else repr(text)
    if problem := timer_literal_error(text, duration=duration):
        raise ScriptError(f"timer {expression.strip()!r}: {problem}", element_id=bpmn_id(task))
    return text


class _ClockedDurationTimer(DurationTimerEventDefinition):
    """SpiffWorkflow's duration timer, reading time from the script engine's `now` instead of the wall clock."""

    def has_fired(self, my_task):
        now = _clock(my_task)
        due = my_task._get_internal_data("event_value")
        if due is None:
            duration = TimerEventDefinition.parse_iso_duration(_timer_text(my_task, self.expression, duration=True))
            due = (now + TimerEventDefinition.get_timedelta_from_start(duration, now)).isoformat()
            my_task._set_internal_data(event_value=due)
        if as_utc(due) <= now:
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class _ClockedTimeDateTimer(TimeDateEventDefinition):
    """SpiffWorkflow's date-time timer, reading time from the script engine's `now` instead of the wall clock."""

    def has_fired(self, my_task):
        due = my_task._get_internal_data("event_value")
        if due is None:
            due = as_utc(_timer_text(my_task, self.expression, duration=False)).isoformat()
            my_task._set_internal_data(event_value=due)
        if as_utc(due) <= _clock(my_task):
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class _InstanceStateConverter(BpmnWorkflowConverter):
    """SpiffWorkflow's converter of a workflow, for states kept apart from their specs.

    An instance's state is stored without the specs (its definition version holds them, and they never change):
    to_dict leaves them out rather than converting the whole model on every step, and from_dict, given
    `specs=(process spec, subprocess specs)` already restored (once per definition version and process), uses them
    rather than restoring the model again. Without `specs` it restores a dict that carries them, as SpiffWorkflow
    does (a state being migrated from an older serializer version).
    """

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct, specs=None):
        if specs is None:
            return super().from_dict(dct)
        process_spec, subprocess_specs = specs
        # As BpmnWorkflowConverter.from_dict, past the restoring of the specs.
        workflow = self.target_class(process_spec, dict(subprocess_specs), deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _serializer() -> BpmnWorkflowSerializer:
    registry = BpmnWorkflowSerializer.configure(
        {**SPIFF_CONFIG, BpmnWorkflow: _InstanceStateConverter, DecisionTask: SpiffBpmnTaskConverter}
    )
    # Registered under SpiffWorkflow's own type names, so stored specs stay in its standard format and the
    # parser's stock timers are simply restored as their clocked subclasses.
    TimerConditionalEventDefinitionConverter(_ClockedDurationTimer, registry, "DurationTimerEventDefinition")
    TimerConditionalEventDefinitionConverter(_ClockedTimeDateTimer, registry, "TimeDateEventDefinition")
    return BpmnWorkflowSerializer(registry)


SERIALIZER = _serializer()
