"""Python handlers of external task topics, registered by decorator: `@external_task_handler("records-check")`.

A handler takes an ExternalTaskInput and returns the variables to complete the item with (or None); raising fails
the item (handlers.py). Modules listed in settings.EXTERNAL_TASK_HANDLER_MODULES are imported on first use, so a
worker registers the same handlers as the web.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ExternalTaskInput:
    external_task_id: int
    topic_name: str
    business_key: str
    variables: dict
    retries: int | None


DISPATCH_TASK = "workflow.dispatch_external_task_handlers"  # tasks/jobs.py
Handler = Callable[[ExternalTaskInput], dict | None]
_handlers: dict[str, Handler] = {}


def external_task_handler(topic_name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _handlers[topic_name] = handler
        return handler

    return register


def registered_handlers() -> dict[str, Handler]:
    """The handlers of the modules settings.EXTERNAL_TASK_HANDLER_MODULES lists (the setting decides, not whatever
    module happened to be imported)."""
    modules = set(settings.EXTERNAL_TASK_HANDLER_MODULES)
    for module in modules:
        importlib.import_module(module)
    return {topic: handler for topic, handler in _handlers.items() if handler.__module__ in modules}
