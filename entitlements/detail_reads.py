"""The access audit, written from the request being served: who read which case or task detail, when, how.

One row per read of a case or task detail: the caseworker pages (`/cases/{id}/`, `/tasks/{id}/`), the API
(`GET /api/cases/{id}`, `GET /api/workflow/tasks/{id}` and its `/history`) and the supervisor console's case and
task pages. One row, too, per refused attempt at one (outcome "denied": the object exists but lies outside the
reader's queues, so the reader got the same 404 as for an absent one; probing is what an auditor looks for).
Lists write nothing. Who: the user whose access was used and, when an integration acted for them
(X-On-Behalf-Of), the authenticated account as well.

Cost: one INSERT per read, no query before it. It joins the request's transaction when the request runs in one
(no savepoint: that would be two more round trips); otherwise it commits on its own, before the response is
built, so a read whose row could not be written fails instead of being shown unrecorded.
"""

from __future__ import annotations

from .authentication import client_address
from .models import DetailReadOutcome
from .services import access_audit_record


def detail_read_record(*, request, channel: str, object_type: str, object_id: int, object_label="") -> None:
    """Record that the request's user was shown the detail of this case or task."""
    _record(
        request=request,
        channel=channel,
        object_type=object_type,
        object_id=object_id,
        object_label=object_label,
        outcome=DetailReadOutcome.GRANTED,
    )


def detail_read_refusal_record(*, request, channel: str, object_type: str, object_id: int, error) -> None:
    """Record a refused read: `error` (a NotFound) hid an object that exists outside the user's queues.

    A NotFound without `denial` is an object that does not exist: nothing to attach a row to, nothing recorded.
    """
    if not getattr(error, "denial", None):
        return
    _record(
        request=request,
        channel=channel,
        object_type=object_type,
        object_id=object_id,
        object_label="",
        outcome=DetailReadOutcome.DENIED,
    )


def _record(*, request, channel, object_type, object_id, object_label, outcome) -> None:
    user = getattr(request, "user", None)
    access_audit_record(
        object_type=object_type,
        object_id=object_id,
        object_label=object_label,
        channel=channel,
        outcome=outcome,
        reader=user if user is not None and user.is_authenticated else None,
        via_account=getattr(request, "via_account", None),
        method=request.method,
        path=request.path,
        remote_addr=client_address(request),
    )
