"""The one way a service takes row locks: rows_for_update, used by every app's locks.py.

The order locks are taken in across apps is set out in tasks/locks.py (process instance, then task, then queue).
Like Saleor's checkout/lock_objects.py, every select_for_update of the application lives in a module named
locks.py; tests/tasks/test_lock_order.py fails on one anywhere else.
"""

from __future__ import annotations

from django.db.models import QuerySet


class LockQueryError(ValueError):
    """A locking read that would lock more than the rows of its own table."""


def rows_for_update(queryset: QuerySet, *, skip_locked: bool = False) -> QuerySet:
    """`queryset` as a locking read (FOR UPDATE): in primary-key order, so that two transactions locking some of
    the same rows take them in the same order and one waits for the other instead of deadlocking.

    With `skip_locked` the rows another transaction holds are passed over: such a read never waits, so it cannot
    take part in a deadlock, and it keeps the caller's order (the best rows first, as claim-next and the sweeps
    want them).

    What `select_for_update(of=("self",))` says is true of every read this returns: only the rows of the
    queryset's own table are locked. It cannot be said with `of`: our tables live in schemas (`db_table =
    'flowable"."workflow_tasks'`), Django writes `FOR UPDATE OF "flowable"."workflow_tasks"`, and PostgreSQL
    refuses a schema-qualified name there ("FOR UPDATE must specify unqualified relation names"). So the read
    joins nothing instead (FOR UPDATE without OF locks every table in the FROM list; subqueries in WHERE are only
    read), and this refuses a queryset that joins.
    """
    query = queryset.query
    tables = [alias for alias, references in query.alias_refcount.items() if references]  # as compiled into FROM
    if query.select_related or len(tables) > 1:
        raise LockQueryError(
            f"a locking read of {queryset.model.__name__} must not join other tables: FOR UPDATE would lock their "
            "rows too; filter by ids or with a subquery instead"
        )
    locking = queryset.select_for_update(skip_locked=skip_locked)
    return locking if skip_locked else locking.order_by("pk")
