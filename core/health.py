"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

from .database import connection_failure_reason

BROKER_TIMEOUT_SECONDS = 2


@login_not_required
@never_cache
@require_GET
def healthz(request):
    """200 while the process runs; it checks nothing else on purpose."""
    return JsonResponse({"status": "ok"})


def database_problem() -> str | None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means not ready; the reason, on one line, goes to the body
        return connection_failure_reason(exc)
    return None


def broker_problem() -> str | None:
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=BROKER_TIMEOUT_SECONDS,
        ) as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


@login_not_required
@never_cache
@require_GET
def readyz(request):
    """200 only when the database and the broker answer; 503 naming what is down."""
    checks = {"database": database_problem(), "broker": broker_problem()}
    down = {name: problem for name, problem in checks.items() if problem}
    body = {
        "status": "ok" if not down else "unavailable",
        "checks": {name: (problem or "ok") for name, problem in checks.items()},
    }
    if down:
        body["down"] = sorted(down)
    return JsonResponse(body, status=503 if down else 200)
