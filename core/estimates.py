"""The planner's estimates behind the lists' "about N", kept in Django's cache for a while.

A list whose scope holds more rows than it will count asks the planner how many there are (an EXPLAIN: planning a
statement under row-level security, a few milliseconds, about as much as reading the page). The figure moves only
when ANALYZE runs, and it decides nothing about which rows a page shows: only the "about N" and, for the case
list, which way the scope is read. So it is kept for LIST_ESTIMATE_CACHE_SECONDS under a key naming what the list
holds (the caller's queues and filters, never the caller), shared by the processes of a deployment through the
cache (Redis with REDIS_URL, else each process's memory). 0 plans it on every request. An unreachable cache costs
the EXPLAIN, never the page: the figure is planned and the warning logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache

T = TypeVar("T")
log = logging.getLogger(__name__)


def remembered_estimate(key: str, compute: Callable[[], T]) -> T:
    """compute()'s answer for `key`, from the cache while it is younger than LIST_ESTIMATE_CACHE_SECONDS."""
    seconds = settings.LIST_ESTIMATE_CACHE_SECONDS
    if not seconds:
        return compute()
    cache_key = "list-estimate:" + hashlib.sha256(key.encode()).hexdigest()
    try:
        cached = cache.get(cache_key)
    except Exception:
        log.warning("list estimate planned uncached: the cache is unavailable", exc_info=True)
        return compute()
    if cached is not None:
        return cached
    figure = compute()
    try:
        cache.set(cache_key, figure, seconds)
    except Exception:
        log.warning("list estimate not cached: the cache is unavailable", exc_info=True)
    return figure
