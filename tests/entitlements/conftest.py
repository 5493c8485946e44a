"""Fixtures of the entitlements tests."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from entitlements import services


class AuditWindowClock:
    """The clock of failed-authentication audit windows, pinned to the middle of one window until moved on."""

    def __init__(self):
        window = settings.AUTH_FAILURE_AUDIT_WINDOW_SECONDS
        start = datetime.now(UTC).timestamp() // window * window
        self.now = datetime.fromtimestamp(start + window / 2, tz=UTC)

    def next_window(self) -> None:
        self.now += timedelta(seconds=settings.AUTH_FAILURE_AUDIT_WINDOW_SECONDS)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def audit_window_clock(monkeypatch) -> AuditWindowClock:
    """Failed authentications of one test land in one audit window, whatever the wall clock does meanwhile."""
    clock = AuditWindowClock()
    monkeypatch.setattr(services, "auth_failure_clock", clock)
    return clock
