"""The domain's exception hierarchy, shared by every app; mapped once to HTTP codes and form messages."""

from __future__ import annotations


class WorkflowError(Exception):
    """Base of every domain error. `code` is stable: clients may branch on it."""

    code = "workflow_error"
    http_status = 400

    def __init__(self, detail: str, *, code: str | None = None, fields: dict[str, list[str]] | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.fields = fields or {}


class NotFound(WorkflowError):
    """Also raised for objects that exist outside the caller's queues; `denial` then says what was refused."""

    code = "not_found"
    http_status = 404
    denial: dict | None = None


class Conflict(WorkflowError):
    code = "conflict"
    http_status = 409


class InvalidInput(WorkflowError):
    code = "invalid"
    http_status = 400


class PermissionDenied(WorkflowError):
    code = "permission_denied"
    http_status = 403
