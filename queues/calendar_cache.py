"""The business calendar a queue's SLA hours count in, cached: every new task computes a due date from it, and it
changes only when someone edits a calendar, its holidays, a department's calendar or the department tree.

Entries live in Django's cache (Redis with REDIS_URL: shared by every web and worker process), each stamped with the
generation number it was read under; any such edit bumps the generation (receivers connected in queues/apps.py), so
an edit is seen by the next task everywhere. The generation and the queue's entry are read in one round trip. A queue's own calendar and department are part of the key: editing the queue needs no bump. Writes that
bypass model signals (raw SQL, QuerySet.update) are bounded by WORK_CALENDAR_CACHE_SECONDS. Without REDIS_URL each
process would hold its own copy that another process's edit cannot reach, so the cache is off there (the setting's
default is 0). A cache that cannot be reached is skipped: the calendar is read from the database, as uncached.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from .calendar import WorkCalendar

log = logging.getLogger(__name__)

GENERATION_KEY = "queues:work-calendar:generation"


class _Pending(threading.local):
    changed = False
    transaction_id: str | None = None  # the PostgreSQL transaction that made the change


_pending = _Pending()

CURRENT_TRANSACTION_SQL = "SELECT pg_current_xact_id_if_assigned()::text"


def _current_transaction_id() -> str | None:
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(CURRENT_TRANSACTION_SQL)
        return cursor.fetchone()[0]


def _generation() -> int:
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        cache.add(GENERATION_KEY, 1, timeout=None)
        generation = cache.get(GENERATION_KEY, 1)
    return generation


def _changed_in_this_transaction() -> bool:
    """Whether this thread's open transaction changed calendars: its reads must not be cached (it may roll back,
    and its rows are not what other processes see).

    A commit clears the mark (_bump_generation); a rollback runs no hook, so a marked thread asks PostgreSQL whether
    it is still in the transaction that wrote (one query, only while marked): without that, one rolled-back calendar
    edit left the thread reading calendars uncached for as long as its work ran in atomic blocks, which is always."""
    if not _pending.changed:
        return False
    if transaction.get_connection().in_atomic_block and _current_transaction_id() == _pending.transaction_id:
        return True
    _pending.changed, _pending.transaction_id = False, None  # that transaction ended
    return False


def cached_work_calendar(queue, compute) -> WorkCalendar | None:
    """compute() (the queue's calendar read from the database), remembered for WORK_CALENDAR_CACHE_SECONDS."""
    timeout = settings.WORK_CALENDAR_CACHE_SECONDS
    if not timeout or _changed_in_this_transaction():
        return compute()
    key = f"queues:work-calendar:{queue.pk}:{queue.business_calendar_id}:{queue.department_id}"
    try:
        found = cache.get_many([GENERATION_KEY, key])
        generation = found.get(GENERATION_KEY)
        if generation is None:
            generation = _generation()
    except Exception:
        log.warning("business calendar read uncached: the cache is unavailable", exc_info=True)
        return compute()
    entry = found.get(key)
    if entry is not None and entry[0] == generation:
        return entry[1]  # (generation, calendar): None (round the clock) is a value, not a miss
    calendar = compute()
    try:
        cache.set(key, (generation, calendar), timeout=timeout)
    except Exception:
        log.warning("business calendar not cached: the cache is unavailable", exc_info=True)
    return calendar


def work_calendars_changed(**signal) -> None:
    """Receives post_save and post_delete of calendars, holidays, department calendars and departments: every cached
    calendar is stale once the change commits (the old generation's entries expire unread). Bumped after the commit,
    not before: a reader in between would cache the old rows under the new generation."""
    if transaction.get_connection().in_atomic_block:
        _pending.changed, _pending.transaction_id = True, _current_transaction_id()
    transaction.on_commit(_bump_generation)


def _bump_generation() -> None:
    _pending.changed, _pending.transaction_id = False, None
    try:
        if not cache.add(GENERATION_KEY, 2, timeout=None):
            cache.incr(GENERATION_KEY)
    except ValueError:
        cache.add(GENERATION_KEY, 2, timeout=None)  # evicted between add and incr: any new number will do
    except Exception:
        log.warning(
            "cached business calendars not invalidated: the cache is unavailable (entries expire within %s s)",
            settings.WORK_CALENDAR_CACHE_SECONDS,
            exc_info=True,
        )
