"""flowable.task_history, partitioned by month of created_at, and the online move of an existing history into it.

A new installation gets the partitioned table from migration 0026. An installation whose history is large keeps
its single table through `migrate` and moves it with `manage.py partition_task_history`, while claims go on:

1. prepare (one short transaction): a partitioned copy `flowable.task_history_partitioned` with the table's columns,
   checks, foreign keys and indexes (built before any row, so each row is indexed once), month partitions from the
   oldest event's month to next month and a DEFAULT one; and a trigger on the old table that repeats every insert,
   update and delete there in the copy, in the writer's own transaction. From its commit on, the two cannot drift.
2. backfill: the rows that existed before, in batches of event ids, one transaction each (`ON CONFLICT DO NOTHING`:
   the trigger may have copied a row first; `FOR SHARE`: a row being copied cannot be updated or deleted until its
   batch commits, so the trigger's copy of the change lands after it). Interrupted, it starts again where the copy
   ends.
3. verify: in one statement (one snapshot), both tables hold the same number of rows with the same checksum (no lock taken).
4. cut over (one short transaction, ACCESS EXCLUSIVE on both tables for milliseconds): the old table goes, the copy
   takes its name, its indexes take the old index names, its identity continues the old numbering, and it gets the
   old table's triggers, row-level security policies and grants (copied from the catalog, so whatever later
   migrations added comes along).

Django's model keeps `event_id` as the primary key: the database's key is (event_id, created_at), because a
partitioned table's key must hold its partition key; event_id still comes from one identity sequence.
The month partitions ahead are made by the daily job (flowable.ensure_task_history_partitions).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import OperationalError, connection, transaction

from core.errors import Conflict, InvalidInput
from entitlements.services import months_ahead_check

logger = logging.getLogger(__name__)

TABLE = "flowable.task_history"
SHADOW = "flowable.task_history_partitioned"
SHADOW_NAME = "task_history_partitioned"
SINGLE = "flowable.task_history_single"
INDEX_SUFFIX = "_new"
DEFAULT_BATCH_SIZE = 20_000
DEFAULT_DUTY = 0.5
MAX_BATCH_SIZE = 500_000
MONTHS_AHEAD = 1
# Row counts up to which migration 0026 moves an existing history itself, in its own transaction (a brief lock);
# above it `migrate` leaves the single table to `manage.py partition_task_history`.
MIGRATE_IN_PLACE_MAX_ROWS = 100_000
BACKFILL_NOTE = "partition_task_history: backfill up to event "
OLD_NAME = "task_history_unpartitioned"
OLD = f"flowable.{OLD_NAME}"
OLD_SUFFIX = "_unpartitioned"
LOCK_WAIT = "2s"
LOCK_ATTEMPTS = 10
RETRIED = {"55P03", "40P01"}  # lock_not_available, deadlock_detected

MIRROR_SQL = f"""
CREATE OR REPLACE FUNCTION flowable.task_history_mirror() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM {SHADOW} WHERE event_id = OLD.event_id AND created_at = OLD.created_at;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO {SHADOW} OVERRIDING SYSTEM VALUE SELECT NEW.* ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION flowable.task_history_mirror() FROM PUBLIC;
CREATE TRIGGER task_history_mirror AFTER INSERT OR UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION flowable.task_history_mirror();
ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER task_history_mirror;
"""

COPY_BATCH_SQL = f"""
INSERT INTO {SHADOW} OVERRIDING SYSTEM VALUE
SELECT * FROM {TABLE} WHERE event_id > %(after)s AND event_id <= %(upto)s ORDER BY event_id FOR SHARE
ON CONFLICT DO NOTHING
"""

# Order-independent: the number of rows and the sum of a 64-bit hash of each row's text, of both tables.
VERIFY_SQL = f"""
SELECT old.n, old.checksum, new.n, new.checksum
  FROM (SELECT count(*) AS n, coalesce(sum(hashtextextended(t::text, 0)), 0) AS checksum FROM ONLY {TABLE} t) AS old,
       (SELECT count(*) AS n, coalesce(sum(hashtextextended(t::text, 0)), 0) AS checksum FROM {SHADOW} t) AS new
"""


@dataclass
class PartitioningStatus:
    partitioned: bool
    in_progress: bool  # a copy is being filled (prepared, not yet cut over)
    partitions: list[str]
    rows: int  # planner's estimate of the table's rows
    copied_up_to: int | None = None  # while in progress: the highest event id the backfill has copied
    backfill_target: int | None = None


@dataclass
class PartitioningResult:
    rows_copied: int = 0
    batches: int = 0
    partitions: list[str] = field(default_factory=list)
    cutover_attempts: int = 0
    already_partitioned: bool = False
    seconds: dict[str, float] = field(default_factory=dict)  # per step: prepare, copy, verify, switch, drop


def _relkind(cursor, name: str) -> str | None:
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [name])
    row = cursor.fetchone()
    return row[0] if row else None


def _partitions(cursor, parent: str) -> list[str]:
    cursor.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = to_regclass(%s) ORDER BY 1", [parent]
    )
    return [name for (name,) in cursor.fetchall()]


def task_history_partitioning_status() -> PartitioningStatus:
    with connection.cursor() as cursor:
        partitioned = _relkind(cursor, TABLE) == "p"
        in_progress = _relkind(cursor, SHADOW) == "p"
        cursor.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        rows = cursor.fetchone()[0]
        status = PartitioningStatus(
            partitioned=partitioned,
            in_progress=in_progress,
            partitions=_partitions(cursor, TABLE if partitioned else SHADOW),
            rows=rows,
        )
        if in_progress:
            status.backfill_target = _backfill_target(cursor)
            status.copied_up_to = _copied_up_to(cursor, status.backfill_target or 0)
    return status


def _backfill_target(cursor) -> int | None:
    """The highest event id the backfill copies (every row above it was written with the mirror trigger in
    place); None before the trigger is."""
    cursor.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [SHADOW])
    match = re.fullmatch(rf"{BACKFILL_NOTE}(\d+)", cursor.fetchone()[0] or "")
    return int(match.group(1)) if match else None


def _copied_up_to(cursor, target: int) -> int:
    cursor.execute(f"SELECT coalesce(max(event_id), 0) FROM {SHADOW} WHERE event_id <= %s", [target])
    return cursor.fetchone()[0]


def _month_starts_sql(months_ahead: int) -> str:
    return f"""
    SELECT generate_series(
        date_trunc('month', coalesce(least((SELECT min(created_at) FROM {TABLE}), now()), now()), 'UTC'),
        date_trunc('month', now(), 'UTC') + interval '{int(months_ahead)} month',
        interval '1 month'
    ) AT TIME ZONE 'UTC'
    """


def _indexes(cursor, table: str) -> list[tuple[str, str, bool, bool]]:
    """(name, definition, is primary, is unique) of a table's indexes."""
    cursor.execute(
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisprimary, i.indisunique
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE i.indrelid = to_regclass(%s) ORDER BY 1
        """,
        [table],
    )
    return cursor.fetchall()


def _index_on(definition: str, table: str, name: str) -> str:
    """An index definition of another table, under another name (the ONLY a partitioned parent's shows goes)."""
    return re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ ", rf"CREATE \1INDEX {name} ON {table} ", definition)


def _foreign_keys(cursor, table: str) -> list[tuple[str, str]]:
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%s) "
        "AND contype = 'f' ORDER BY 1",
        [table],
    )
    return cursor.fetchall()


def _copy_table(cursor, *, source: str, target: str, partitioned: bool, foreign_keys: bool = True) -> None:
    """`target`: `source`'s columns, checks, foreign keys and indexes, its key (event_id, created_at) when
    partitioned, (event_id) when not; the indexes are named as the source's with INDEX_SUFFIX."""
    cursor.execute("SELECT count(*) FROM pg_constraint WHERE confrelid = to_regclass(%s) AND contype = 'f'", [source])
    if cursor.fetchone()[0]:
        raise Conflict(f"a foreign key references {source}: it cannot be moved by this command")
    cursor.execute(
        f"CREATE TABLE {target} (LIKE {source} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS "
        f"INCLUDING STORAGE INCLUDING COMMENTS)" + (" PARTITION BY RANGE (created_at)" if partitioned else "")
    )
    for name, definition, primary, unique in _indexes(cursor, source):
        if primary:
            key = "event_id, created_at" if partitioned else "event_id"
            cursor.execute(f"ALTER TABLE {target} ADD CONSTRAINT {name}{INDEX_SUFFIX} PRIMARY KEY ({key})")
        elif unique and partitioned:
            raise Conflict(f"{name} is unique without created_at: a partitioned {source} cannot keep it")
        else:
            cursor.execute(_index_on(definition, target, name + INDEX_SUFFIX))
    if foreign_keys:
        _foreign_keys_add(cursor, source=source, target=target)
    # Row-level security from the start: the application role gets no grant on the copy before the switch, but
    # the copy must never be a way around the policies.
    for statement in _policies(cursor, source=source, target=target):
        cursor.execute(statement)


def _foreign_keys_add(cursor, *, source: str, target: str) -> None:
    """Give `target` the foreign keys of `source` it lacks (adding one locks the table it points at)."""
    existing = {name for name, _definition in _foreign_keys(cursor, target)}
    for name, definition in _foreign_keys(cursor, source):
        if name not in existing:
            cursor.execute(f"ALTER TABLE {target} ADD CONSTRAINT {name} {definition}")


def _partitioned_copy(cursor, *, months_ahead: int, foreign_keys: bool = True) -> None:
    """The partitioned copy with its month partitions (the oldest event's month to `months_ahead` months ahead)
    and a DEFAULT one. The months are read first: that scan holds no lock that the copy's foreign keys take."""
    cursor.execute(_month_starts_sql(months_ahead))
    starts = [start for (start,) in cursor.fetchall()]
    _copy_table(cursor, source=TABLE, target=SHADOW, partitioned=True, foreign_keys=foreign_keys)
    for start in starts:
        cursor.execute(
            f"CREATE TABLE flowable.task_history_p{start:%Y_%m} PARTITION OF {SHADOW} FOR VALUES FROM (%s) TO (%s)",
            [f"{start:%Y-%m-%d} 00:00+00", _next_month(start)],
        )
    cursor.execute(f"CREATE TABLE flowable.task_history_default PARTITION OF {SHADOW} DEFAULT")


def _prepare(*, months_ahead: int) -> int:
    """Make the partitioned copy and the mirror trigger; the backfill's last event id. In three transactions, so
    that no lock claims need is held for longer than one short statement: the copy and its partitions (nothing
    claims use), its foreign keys (each locks the table it points at), then the trigger (it locks the table)."""

    def copy(cursor) -> None:
        cursor.execute("SET LOCAL statement_timeout = 0")
        if _relkind(cursor, SHADOW) is None:
            _partitioned_copy(cursor, months_ahead=months_ahead, foreign_keys=False)

    def mirror(cursor) -> int:
        if (target := _backfill_target(cursor)) is not None:
            return target
        cursor.execute(MIRROR_SQL)
        # Every row written from here on is mirrored; every row written before is at or below this id (the
        # trigger's creation waited for the writers that were in flight).
        cursor.execute(f"SELECT coalesce(max(event_id), 0) FROM {TABLE}")
        target = cursor.fetchone()[0]
        cursor.execute(f"COMMENT ON TABLE {SHADOW} IS %s", [f"{BACKFILL_NOTE}{target}"])
        return target

    _locking_step(copy)
    _locking_step(lambda cursor: _foreign_keys_add(cursor, source=TABLE, target=SHADOW))
    return _locking_step(mirror)[0]


def _next_month(start) -> str:
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return f"{year:04d}-{month:02d}-01 00:00+00"


def _verify(cursor) -> None:
    """Both tables the same: one statement, so both are read in the same snapshot."""
    cursor.execute(VERIFY_SQL)
    old_rows, old_sum, new_rows, new_sum = cursor.fetchone()
    if (old_rows, old_sum) != (new_rows, new_sum):
        raise Conflict(
            f"the partitioned copy differs from {TABLE} ({new_rows} rows against {old_rows}); nothing was switched: "
            "run the command again"
        )


def _policies(cursor, *, source: str, target: str) -> list[str]:
    """CREATE POLICY statements that give `target` the row-level security policies of `source`."""
    cursor.execute(
        """
        SELECT format('CREATE POLICY %%I ON %%s AS %%s FOR %%s TO %%s%%s%%s', pol.polname, %s,
                      CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                      CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                      WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                      (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(r::regrole::text) END, ', ')
                         FROM unnest(pol.polroles) AS r),
                      ' USING (' || pg_get_expr(pol.polqual, pol.polrelid) || ')',
                      ' WITH CHECK (' || pg_get_expr(pol.polwithcheck, pol.polrelid) || ')')
          FROM pg_policy pol WHERE pol.polrelid = to_regclass(%s) ORDER BY pol.polname
        """,
        [target, source],
    )
    statements = [definition for (definition,) in cursor.fetchall()]
    cursor.execute("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass(%s)", [source])
    row_security, forced = cursor.fetchone()
    if row_security:
        statements.append(f"ALTER TABLE {target} ENABLE ROW LEVEL SECURITY")
    if forced:
        statements.append(f"ALTER TABLE {target} FORCE ROW LEVEL SECURITY")
    return statements


def _carried_over(cursor) -> list[str]:
    """What TABLE's replacement takes from it at the switch (after taking its name): its triggers (as they are
    written, they name flowable.task_history), its grants and its comment."""
    cursor.execute(
        "SELECT pg_get_triggerdef(oid), tgname, tgenabled FROM pg_trigger "
        "WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal AND tgname <> 'task_history_mirror' ORDER BY tgname",
        [TABLE],
    )
    statements = []
    for definition, name, enabled in cursor.fetchall():
        statements.append(definition)
        if enabled == "A":
            statements.append(f"ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER {name}")
    cursor.execute(
        """
        SELECT format('GRANT %%s ON %%s TO %%s', a.privilege_type, %s,
                      CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END)
          FROM pg_class c, aclexplode(c.relacl) AS a
         WHERE c.oid = to_regclass(%s) AND a.grantee <> c.relowner
         ORDER BY 1
        """,
        [TABLE, TABLE],
    )
    statements += [grant for (grant,) in cursor.fetchall()]
    cursor.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [TABLE])
    (comment,) = cursor.fetchone()
    if comment:
        statements.append(f"COMMENT ON TABLE {TABLE} IS {_literal(cursor, comment)}")
    return statements


def _literal(cursor, text: str) -> str:
    cursor.execute("SELECT quote_literal(%s)", [text])
    return cursor.fetchone()[0]


def _swap(cursor, *, new: str, keep_old: bool) -> None:
    """TABLE's name, index names, numbering, triggers and grants go to `new` (both locked by the caller). The old
    table is renamed to OLD (dropped later, by `_old_table_drop`) when `keep_old`, else dropped now."""
    carried_over = _carried_over(cursor)
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'event_id')", [TABLE])
    (old_sequence,) = cursor.fetchone()
    cursor.execute(f"SELECT last_value, is_called FROM {old_sequence}")
    last_value, is_called = cursor.fetchone()
    cursor.execute(f"DROP TRIGGER IF EXISTS task_history_mirror ON {TABLE}")
    cursor.execute("DROP FUNCTION IF EXISTS flowable.task_history_mirror()")
    if keep_old:
        # Dropping the old table now would lock the tables its foreign keys point at (workflow_tasks), which claims
        # hold while they wait for this one: a deadlock. Nobody writes the old table after the switch, so it is
        # dropped afterwards without that risk.
        for name, _definition, _primary, _unique in _indexes(cursor, TABLE):
            cursor.execute(f"ALTER INDEX flowable.{name} RENAME TO {name}{OLD_SUFFIX}")
        cursor.execute(f"ALTER SEQUENCE {old_sequence} RENAME TO task_history_event_id_seq{OLD_SUFFIX}")
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD_NAME}")
    else:
        cursor.execute(f"DROP TABLE {TABLE}")
    cursor.execute(f"ALTER TABLE {new} RENAME TO task_history")
    for name, _definition, _primary, _unique in _indexes(cursor, TABLE):
        if name.endswith(INDEX_SUFFIX):
            cursor.execute(f"ALTER INDEX flowable.{name} RENAME TO {name.removesuffix(INDEX_SUFFIX)}")
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'event_id')", [TABLE])
    (sequence,) = cursor.fetchone()
    cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO task_history_event_id_seq")
    cursor.execute("SELECT setval('flowable.task_history_event_id_seq', %s, %s)", [last_value, is_called])
    for statement in carried_over:
        cursor.execute(statement)


def _old_table_drop() -> bool:
    """Drop the table a switch left behind (nobody writes it); whether there was one."""

    def drop(cursor) -> bool:
        if _relkind(cursor, OLD) is None:
            return False
        _lock_for_drop(cursor, OLD)
        cursor.execute(f"DROP TABLE {OLD}")
        return True

    return _locking_step(drop)[0]


def _locking_step(step: Callable):
    """Run `step(cursor)` in a transaction that waits at most LOCK_WAIT for each lock (claims queue behind a
    waiting lock request, so it must not wait long), again after a pause when a lock was not granted or a deadlock
    broke it; its result and the attempts it took."""
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
                return step(cursor), attempt
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in RETRIED or attempt == LOCK_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _cutover(cursor) -> None:
    # In the order claims take them: the old table (their insert), then the copy (the mirror trigger's).
    cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"LOCK TABLE {SHADOW} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"COMMENT ON TABLE {SHADOW} IS NULL")
    _swap(cursor, new=SHADOW, keep_old=True)


def _lock_for_drop(cursor, table: str) -> None:
    """Dropping a history table drops its foreign keys, which locks the tables they point at (workflow_tasks,
    users) in ACCESS EXCLUSIVE mode. Take those first, then the table: the order in which claims lock them (a
    claim updates its task, then appends its event), so a drop under traffic waits for claims, never deadlocks
    with one. Held for milliseconds; LOCK_WAIT bounds the wait."""
    cursor.execute(
        "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype = 'f' ORDER BY 1 DESC",  # flowable.workflow_tasks first
        [table],
    )
    for (referenced,) in cursor.fetchall():
        cursor.execute(f"LOCK TABLE {referenced} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")


def batch_size_check(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(
            f"batch size must be between 1 and {MAX_BATCH_SIZE} (got {batch_size!r})",
            code="batch_size_invalid",
            fields={"batch_size": [f"Between 1 and {MAX_BATCH_SIZE}."]},
        )


def duty_check(duty) -> None:
    if isinstance(duty, bool) or not isinstance(duty, int | float) or not 0.05 <= duty <= 1:
        raise InvalidInput(
            f"duty must be between 0.05 and 1 (got {duty!r})", code="duty_invalid", fields={"duty": ["0.05 to 1."]}
        )


def task_history_partition(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    duty: float = DEFAULT_DUTY,
    months_ahead: int = MONTHS_AHEAD,
    on_batch: Callable[[int, int, int], None] | None = None,
) -> PartitioningResult:
    """Move flowable.task_history into a table partitioned by month, online (the module's docstring).

    Runs as the tables' owner, outside any transaction (each step commits on its own). Safe to interrupt and run
    again: it resumes the copy. `on_batch(copied, up_to, target)` after each batch. The copy works at most `duty`
    of the time (0.5: after a batch of 0.2 s it waits 0.2 s), leaving the rest of the cores to users.
    """
    batch_size_check(batch_size)
    duty_check(duty)
    if connection.in_atomic_block:
        raise Conflict("partition_task_history commits in steps: call it outside a transaction")
    result = PartitioningResult()
    with connection.cursor() as cursor:
        kind = _relkind(cursor, TABLE)
    if kind == "p":
        result.already_partitioned = True
        _old_table_drop()  # a run stopped right after its switch
        return result

    clock = time.perf_counter()

    def step_done(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.seconds[name] = now - clock
        clock = now

    target = _prepare(months_ahead=months_ahead)
    step_done("prepare")
    with connection.cursor() as cursor:
        after = _copied_up_to(cursor, target)
        if not after:  # from the oldest event: ids below it were archived long ago
            cursor.execute(f"SELECT coalesce(min(event_id), 1) - 1 FROM ONLY {TABLE}")
            after = cursor.fetchone()[0]
    while after < target:
        upto = min(after + batch_size, target)
        batch_started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(COPY_BATCH_SQL, {"after": after, "upto": upto})
            result.rows_copied += max(cursor.rowcount, 0)
        result.batches += 1
        after = upto
        if on_batch:
            on_batch(result.rows_copied, after, target)
        if duty < 1 and after < target:
            time.sleep((time.perf_counter() - batch_started) * (1 / duty - 1))
    step_done("copy")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        _verify(cursor)
    step_done("verify")
    _, result.cutover_attempts = _locking_step(_cutover)
    step_done("switch")
    _old_table_drop()
    step_done("drop")
    with connection.cursor() as cursor:
        result.partitions = _partitions(cursor, TABLE)
    return result


def task_history_partition_in_place(cursor) -> bool:
    """Migration 0026: partition the table within the caller's transaction when it is small (else False)."""
    if _relkind(cursor, TABLE) == "p":
        return True
    cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {TABLE} LIMIT {MIGRATE_IN_PLACE_MAX_ROWS + 1}) AS rows")
    if cursor.fetchone()[0] > MIGRATE_IN_PLACE_MAX_ROWS:
        return False
    _lock_for_drop(cursor, TABLE)
    _partitioned_copy(cursor, months_ahead=MONTHS_AHEAD)
    cursor.execute(f"INSERT INTO {SHADOW} OVERRIDING SYSTEM VALUE SELECT * FROM {TABLE}")
    _swap(cursor, new=SHADOW, keep_old=False)
    return True


def task_history_unpartition(cursor) -> None:
    """Back to one table, within the caller's transaction (migration 0026 reversed; tests of the move)."""
    if _relkind(cursor, TABLE) != "p":
        return
    _lock_for_drop(cursor, TABLE)
    _copy_table(cursor, source=TABLE, target=SINGLE, partitioned=False)
    cursor.execute(f"INSERT INTO {SINGLE} OVERRIDING SYSTEM VALUE SELECT * FROM {TABLE}")
    _swap(cursor, new=SINGLE, keep_old=False)


@transaction.atomic
def task_history_partitions_ensure(*, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the history's month partitions from this month to `months_ahead` months ahead where missing; the
    names of those created. Through flowable.ensure_task_history_partitions (SECURITY DEFINER: the application
    role has no DDL rights). While the history is still one table it creates nothing and logs a warning."""
    months_ahead_check(months_ahead)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM flowable.ensure_task_history_partitions(%s) AS name", [months_ahead])
        created = [name for (name,) in cursor.fetchall()]
        if _relkind(cursor, TABLE) != "p":
            logger.warning("%s is one table: run `manage.py partition_task_history` to partition it", TABLE)
    return created


def task_history_partitioning_abandon() -> bool:
    """Drop an unfinished copy and its mirror trigger (the single table stays as it is); whether there was one."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
        if _relkind(cursor, SHADOW) is None:
            return False
        cursor.execute(f"DROP TRIGGER IF EXISTS task_history_mirror ON {TABLE}")
        cursor.execute("DROP FUNCTION IF EXISTS flowable.task_history_mirror()")
        cursor.execute(f"DROP TABLE {SHADOW}")
        return True
