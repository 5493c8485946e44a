"""Archival: moves finished tasks and their history, older than a cutoff, into the month-partitioned archive tables.

Work goes in batches, each one transaction: lock the next batch of task ids (keyset order, `FOR UPDATE SKIP
LOCKED`, so two runs at once take different tasks and a user's open transaction is passed over, not waited on),
create the month partitions the batch needs, then move its history and tasks with data-modifying CTEs
(`WITH moved AS (DELETE ... RETURNING ...) INSERT INTO archive SELECT ... FROM moved`). A row is therefore in the
live table or in the archive, never both and never neither: an interrupted batch rolls back whole, and the next
run starts again from whatever is still live. Python only ever holds one batch of ids, so memory stays flat
however many tasks there are.

The run as a whole is deliberately not one transaction: committed batches must survive an interruption, and row
locks must stay short. Queue loads do not change: only terminal tasks move, and loads count CLAIMED ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from core.db_roles import maintenance_role
from core.errors import Conflict, InvalidInput
from core.timeouts import statement_timeout_lift
from tasks.models import TaskStatus

TERMINAL_STATUSES = [TaskStatus.COMPLETED.value, TaskStatus.CANCELLED.value, TaskStatus.ESCALATED.value]
DEFAULT_BATCH_SIZE = 5000
MAX_BATCH_SIZE = 100_000


@dataclass(frozen=True)
class ArchivedTable:
    live: str
    archive: str
    partition_key: str

    @property
    def default_partition(self) -> str:
        return f"{self.archive}_default"

    def partition_name(self, month: datetime) -> str:
        return f"{self.archive}_p{month:%Y_%m}"


TASKS = ArchivedTable(
    live="flowable.workflow_tasks", archive="flowable.workflow_tasks_archive", partition_key="completed_at"
)
HISTORY = ArchivedTable(
    live="flowable.task_history", archive="flowable.task_history_archive", partition_key="created_at"
)

ELIGIBLE = "status = ANY(%(statuses)s) AND completed_at < %(cutoff)s"

LOCK_BATCH_SQL = f"""
WITH batch AS (
    SELECT task_id, completed_at
      FROM flowable.workflow_tasks
     WHERE {ELIGIBLE} AND task_id > %(after)s
     ORDER BY task_id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
SELECT array_agg(task_id ORDER BY task_id),
       array_agg(DISTINCT date_trunc('month', completed_at, 'UTC'))
  FROM batch
"""

HISTORY_MONTHS_SQL = """
SELECT DISTINCT date_trunc('month', created_at, 'UTC') AS month FROM flowable.task_history WHERE task_id = ANY(%(ids)s)
 ORDER BY month
"""

# History first: its rows point at the tasks. One statement, so both moves see the same snapshot.
MOVE_BATCH_SQL = """
WITH moved_history AS (
    DELETE FROM flowable.task_history WHERE task_id = ANY(%(ids)s) RETURNING {history_columns}
), archived_history AS (
    INSERT INTO flowable.task_history_archive ({history_columns}, archived_at)
    SELECT {history_columns}, %(archived_at)s FROM moved_history
    RETURNING 1
), moved_tasks AS (
    DELETE FROM flowable.workflow_tasks WHERE task_id = ANY(%(ids)s) RETURNING {task_columns}
), archived_tasks AS (
    INSERT INTO flowable.workflow_tasks_archive ({task_columns}, archived_at)
    SELECT {task_columns}, %(archived_at)s FROM moved_tasks
    RETURNING 1
)
SELECT (SELECT count(*) FROM archived_tasks), (SELECT count(*) FROM archived_history)
"""

PLAN_SQL = f"""
SELECT count(*), array_agg(DISTINCT date_trunc('month', completed_at, 'UTC'))
  FROM flowable.workflow_tasks WHERE {ELIGIBLE}
"""

PLAN_HISTORY_SQL = """
SELECT count(*), array_agg(DISTINCT date_trunc('month', h.created_at, 'UTC'))
  FROM flowable.task_history h
  JOIN flowable.workflow_tasks t ON t.task_id = h.task_id
 WHERE t.status = ANY(%(statuses)s) AND t.completed_at < %(cutoff)s
"""


@dataclass
class ArchivePlan:
    """What a run would move now: counts, and the month partitions it would have to create."""

    cutoff: datetime
    tasks: int
    history: int
    partitions_to_create: list[str]


@dataclass
class ArchiveResult:
    cutoff: datetime
    tasks: int = 0
    history: int = 0
    batches: int = 0
    partitions_created: list[str] = field(default_factory=list)
    # Tasks that met the cutoff but were still live at the end: locked by another transaction (or another run)
    # when their turn came, so passed over rather than waited on. The next run moves them.
    left_locked: int = 0


def archive_cutoff(*, older_than_days: int, now: datetime | None = None) -> datetime:
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int) or older_than_days < 0:
        raise InvalidInput(
            f"days must be a whole number of days, 0 or more (got {older_than_days!r})",
            code="archive_days_invalid",
            fields={"days": ["A whole number of days, 0 or more."]},
        )
    return (now or timezone.now()) - timedelta(days=older_than_days)


def completed_tasks_archive_plan(*, older_than_days: int) -> ArchivePlan:
    """Count what a run would move (tasks, their history) and which partitions it would create. Changes nothing."""
    cutoff = archive_cutoff(older_than_days=older_than_days)
    params = {"statuses": TERMINAL_STATUSES, "cutoff": cutoff}
    with transaction.atomic(), connection.cursor() as cursor:
        statement_timeout_lift(reason="the plan counts the whole archivable backlog and its history")
        _check_archive_columns(cursor)
        cursor.execute(PLAN_SQL, params)
        tasks, task_months = cursor.fetchone()
        cursor.execute(PLAN_HISTORY_SQL, params)
        history, history_months = cursor.fetchone()
        missing = [
            name
            for table, months in ((TASKS, task_months), (HISTORY, history_months))
            for name in sorted({table.partition_name(m) for m in months or []})
            if not _relation_exists(cursor, name)
        ]
    return ArchivePlan(cutoff=cutoff, tasks=tasks, history=history, partitions_to_create=missing)


def completed_tasks_archive(
    *,
    older_than_days: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int, int], None] | None = None,
) -> ArchiveResult:
    """Move terminal tasks completed before now - older_than_days, and all their history, into the archive.

    Each batch commits on its own (`on_batch(tasks, history)` is called after each commit). Safe to interrupt at
    any point and to run again; safe to run twice at once.
    """
    cutoff = archive_cutoff(older_than_days=older_than_days)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(
            f"batch size must be between 1 and {MAX_BATCH_SIZE} (got {batch_size!r})",
            code="archive_batch_size_invalid",
            fields={"batch_size": [f"Between 1 and {MAX_BATCH_SIZE}."]},
        )
    result = ArchiveResult(cutoff=cutoff)
    with connection.cursor() as cursor:
        columns = _check_archive_columns(cursor)
    move_sql = MOVE_BATCH_SQL.format(
        task_columns=", ".join(columns[TASKS]), history_columns=", ".join(columns[HISTORY])
    )
    after = 0
    while True:
        with transaction.atomic(durable=True), maintenance_role(), connection.cursor() as cursor:
            cursor.execute(
                LOCK_BATCH_SQL,
                {"statuses": TERMINAL_STATUSES, "cutoff": cutoff, "after": after, "limit": batch_size},
            )
            ids, task_months = cursor.fetchone()
            if not ids:
                break
            cursor.execute(HISTORY_MONTHS_SQL, {"ids": ids})
            history_months = [month for (month,) in cursor.fetchall()]
            result.partitions_created += _partitions_ensure(
                cursor,
                [(HISTORY, month) for month in history_months] + [(TASKS, month) for month in sorted(task_months)],
            )
            cursor.execute(move_sql, {"ids": ids, "archived_at": timezone.now()})
            tasks_moved, history_moved = cursor.fetchone()
            if tasks_moved != len(ids):  # cannot happen while we hold the rows' locks; if it does, keep everything
                raise Conflict(
                    f"batch after task {after}: locked {len(ids)} tasks but moved {tasks_moved}; rolled back",
                    code="archive_batch_mismatch",
                )
        after = ids[-1]
        result.tasks += tasks_moved
        result.history += history_moved
        result.batches += 1
        if on_batch is not None:
            on_batch(tasks_moved, history_moved)
    with transaction.atomic(), connection.cursor() as cursor:
        statement_timeout_lift(reason="counts what is left of the archivable backlog")
        cursor.execute(
            f"SELECT count(*) FROM flowable.workflow_tasks WHERE {ELIGIBLE}",
            {"statuses": TERMINAL_STATUSES, "cutoff": cutoff},
        )
        (result.left_locked,) = cursor.fetchone()
    return result


def _partitions_ensure(cursor, needed: list[tuple[ArchivedTable, datetime]]) -> list[str]:
    """Create the month partitions in `needed` that do not exist yet; return their names."""
    missing = [(table, month) for table, month in needed if not _relation_exists(cursor, table.partition_name(month))]
    if not missing:
        return []
    # Creating a partition locks its parent ACCESS EXCLUSIVE anyway; taking both parents up front, in the order the
    # move statement locks them (history, then tasks), makes concurrent creators queue instead of deadlocking, and
    # the lock makes this session see partitions another run committed while we waited.
    cursor.execute(f"LOCK TABLE ONLY {HISTORY.archive}, {TASKS.archive} IN ACCESS EXCLUSIVE MODE")
    created = []
    for table, month in missing:
        name = table.partition_name(month)
        if not _relation_exists(cursor, name):
            _partition_create(cursor, table, name, month)
            created.append(name)
    return created


def _partition_create(cursor, table: ArchivedTable, name: str, month: datetime) -> None:
    start = month.astimezone(UTC)
    end = (start + timedelta(days=32)).replace(day=1)
    bounds = {"start": start, "end": end}
    key = table.partition_key
    # Rows of this month that reached the DEFAULT partition (inserted by something other than this module) would
    # make the new partition fail; lift them out and put them back through the parent once it exists.
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {table.default_partition} WHERE {key} >= %(start)s AND {key} < %(end)s)",
        bounds,
    )
    (strays,) = cursor.fetchone()
    if strays:
        cursor.execute(
            f"""CREATE TEMP TABLE archive_strays ON COMMIT DROP AS
                WITH lifted AS (DELETE FROM {table.default_partition}
                                 WHERE {key} >= %(start)s AND {key} < %(end)s RETURNING *)
                SELECT * FROM lifted""",
            bounds,
        )
    # Creating a partition needs the parent's owner: this function (tasks/sql/) does only that, as the owner.
    cursor.execute("SELECT flowable.archive_partition_create(%s, %s, %s, %s)", [table.archive, name, start, end])
    if strays:
        cursor.execute(f"INSERT INTO {table.archive} SELECT * FROM archive_strays")
        cursor.execute("DROP TABLE archive_strays")


def _relation_exists(cursor, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return cursor.fetchone()[0]


def _check_archive_columns(cursor) -> dict[ArchivedTable, list[str]]:
    """The live tables' columns, after checking the archive has each with the same type.

    A column added to a live table by a later migration but not to its archive would otherwise be dropped
    silently on the way in; refuse instead.
    """
    columns = {}
    for table in (TASKS, HISTORY):
        live = _columns(cursor, table.live)
        archive = _columns(cursor, table.archive)
        missing = [f"{name} {kind}" for name, kind in live.items() if archive.get(name) != kind]
        if missing:
            raise Conflict(
                f"{table.archive} lacks columns of {table.live}: {', '.join(missing)}; add them in a migration",
                code="archive_schema_behind",
            )
        columns[table] = list(live)
    return columns


def _columns(cursor, table: str) -> dict[str, str]:
    cursor.execute(
        """SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
            WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum""",
        [table],
    )
    return dict(cursor.fetchall())
