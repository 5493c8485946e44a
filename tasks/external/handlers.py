"""Running the registered Python handlers (registry.py) on Celery, as one more worker of the external task pool.

The job fetches and locks the items of the registered topics as the account settings.EXTERNAL_TASK_HANDLER_ACCOUNT
(a worker account like any other: explicit permission, its calls in the history), then sends each item to a Celery
task that runs its handler and completes or fails it. Beat runs the job every few seconds (migration 0035), and
a new item of a registered topic sends it at once, after its commit (items.py).
"""

from __future__ import annotations

import logging
import socket

from celery import current_app
from django.conf import settings

from entitlements.models import User

from . import services
from .registry import ExternalTaskInput, registered_handlers

RUN_TASK = "workflow.run_external_task_handler"
DEFAULT_HANDLER_RETRIES = 3
HANDLER_RETRY_TIMEOUT_MS = 60_000
logger = logging.getLogger(__name__)


def handler_worker_id() -> str:
    return f"celery@{socket.gethostname()}"


def _handler_account() -> User | None:
    return User.objects.filter(username=settings.EXTERNAL_TASK_HANDLER_ACCOUNT, is_active=True).first()


def external_task_handlers_dispatch(*, max_tasks: int = 50) -> int:
    """Lock the waiting items of the registered topics for this worker and send each to RUN_TASK; how many."""
    handlers = registered_handlers()
    account = _handler_account()
    if not handlers or account is None:
        return 0
    lock_ms = int(settings.EXTERNAL_TASK_HANDLER_LOCK_SECONDS * 1000)
    locked = services.external_tasks_fetch_and_lock(
        user=account,
        worker_id=handler_worker_id(),
        topics=[services.TopicRequest(topic_name=topic, lock_duration_ms=lock_ms) for topic in sorted(handlers)],
        max_tasks=max_tasks,
    )
    for item in locked:
        current_app.send_task(
            RUN_TASK,
            kwargs={
                "external_task_id": item.external_task_id,
                "topic_name": item.topic_name,
                "business_key": item.business_key,
                "variables": item.variables,
                "retries": item.retries,
                "worker_id": item.worker_id,
            },
        )
    return len(locked)


def external_task_handler_run(
    *, external_task_id: int, topic_name: str, business_key: str, variables: dict, retries, worker_id: str
) -> str:
    """Run the handler of one locked item; complete it with what it returns, or fail it (one retry fewer) if it
    raises. Returns "completed" or "failed"."""
    account = _handler_account()
    handler = registered_handlers()[topic_name]
    try:
        result = handler(
            ExternalTaskInput(
                external_task_id=external_task_id,
                topic_name=topic_name,
                business_key=business_key,
                variables=variables,
                retries=retries,
            )
        )
    except Exception as exc:  # the handler's failure is the item's, recorded on it
        logger.warning("external task %s: handler for %s failed: %s", external_task_id, topic_name, exc)
        left = (DEFAULT_HANDLER_RETRIES if retries is None else retries) - 1
        services.external_task_fail(
            user=account,
            external_task_id=external_task_id,
            worker_id=worker_id,
            error_message=f"{type(exc).__name__}: {exc}"[:1000],
            retries=max(left, 0),
            retry_timeout_ms=HANDLER_RETRY_TIMEOUT_MS if left > 0 else 0,
        )
        return "failed"
    services.external_task_complete(
        user=account, external_task_id=external_task_id, worker_id=worker_id, variables=result or {}
    )
    return "completed"
