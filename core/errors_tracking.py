"""Error tracking with Sentry (SENTRY_DSN, workflow_project/settings.py): what each event carries of ours."""

from __future__ import annotations

from django_guid import get_guid


def event_with_request_id(event: dict, hint: dict) -> dict:
    """sentry-sdk's before_send: tag the event with the request id (X-Request-ID) of the request or job it came from,
    so an operator finds its log lines."""
    if request_id := get_guid():
        event.setdefault("tags", {})["request_id"] = request_id
    return event
