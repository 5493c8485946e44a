"""The engine's errors: what stops it, each naming the BPMN element at fault (tasks/bpmn/engine.py lists them)."""

from __future__ import annotations


class EngineError(Exception):
    """The engine could not do what was asked; `detail` says why for a human, `element_id` names the BPMN element."""

    def __init__(self, detail: str, *, element_id: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.element_id = element_id

    def __str__(self) -> str:
        return f"{self.element_id}: {self.detail}" if self.element_id else self.detail


class BpmnError(EngineError):
    """A definition is refused: not XML, not BPMN 2.0, or uses something this engine does not run."""

    def __init__(self, detail: str, *, element_id: str | None = None, line: int | None = None) -> None:
        super().__init__(detail, element_id=element_id)
        self.line = line

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return super().__str__() + where


class ScriptError(EngineError):
    """A condition, timer expression or script was refused by the sandbox or raised while running."""


class ScriptLimitExceeded(ScriptError):
    """A condition, timer expression or script was stopped at its CPU-time or memory bound; `kind` says which."""

    def __init__(self, detail: str, *, element_id: str | None = None, kind: str) -> None:
        super().__init__(detail, element_id=element_id)
        self.kind = kind


class TaskNotReady(EngineError):
    """The task to complete is not an open user task of this process instance."""


class TaskDataError(EngineError):
    """The variables given to complete a task do not fit its form; `field_errors` maps field id to message."""

    def __init__(self, detail: str, *, element_id: str | None = None, field_errors: dict[str, str]) -> None:
        super().__init__(detail, element_id=element_id)
        self.field_errors = field_errors


class MessageNotAwaited(EngineError):
    """A message was delivered to an instance (or a process's start events) where nothing waits for it."""


class ErrorNotCaught(EngineError):
    """A BPMN error raised at a task (by an external task's worker) that no error boundary event or error event
    subprocess around it catches; nothing was applied."""
