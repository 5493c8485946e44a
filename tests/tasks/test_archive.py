"""archive_completed_tasks: every row ends up live or archived exactly once, through kills, in flat memory."""

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from queues.models import WorkflowQueue
from tasks.sla.archive import DEFAULT_BATCH_SIZE
from tests.roles import admin_connect, analyze

ROOT = Path(__file__).resolve().parents[2]
OLD_TASKS = 200_000
HISTORY_PER_TASK = 2
RECENT_TASKS = 1_000
OPEN_TASKS = 1_000
ARCHIVE_AFTER_DAYS = 30
QUEUES = ["intake", "triage"]

LIVE_TASK_COLUMNS_SQL = """
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
 WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
"""


def insert_finished_tasks(
    count,
    *,
    completed_days_ago,
    spread_days=0,
    status_cycle=("COMPLETED", "CANCELLED", "ESCALATED"),
    history_per_task=HISTORY_PER_TASK,
):
    """`count` terminal tasks completed `completed_days_ago` (spread back over `spread_days`), with history.

    The tasks and their history go in two statements with an ANALYZE between: the history's foreign-key checks run
    at the end of its statement, planned with the task table's statistics. After the suite's earlier tests have
    emptied the table and autovacuum recorded 0 rows, the planner costs every index alike and may check each
    history row by scanning a whole index that merely contains task_id (idx_workflow_tasks_queue_status_priority):
    400,000 scans of it, hours instead of seconds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(task_id), 0) FROM flowable.workflow_tasks")
        after_task_id = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
                escalation_level, required_skills, variables, form_fields, created_at, claimed_at, completed_at,
                updated_at, task_definition_key, delegation_state)
            SELECT 'done ' || g, 'finished work ' || g, (%(queues)s::text[])[1 + g %% 2], ARRAY['grp' || g %% 7],
                   (%(statuses)s::text[])[1 + g %% %(n_statuses)s], g %% 100, g %% 3, '{}',
                   jsonb_build_object('n', g, 'ok', g %% 2 = 0), '[]',
                   done - interval '2 days', done - interval '1 day', done, done, 'review', ''
              FROM generate_series(1, %(count)s) AS g,
                   LATERAL (SELECT now() - make_interval(days => %(days)s)
                                  - make_interval(secs => (g::float8 / %(count)s) * %(spread)s * 86400)) AS d(done)
            """,
            {
                "queues": QUEUES,
                "statuses": list(status_cycle),
                "n_statuses": len(status_cycle),
                "count": count,
                "days": completed_days_ago,
                "spread": spread_days,
            },
        )
        analyze(cursor, "flowable.workflow_tasks")
        cursor.execute(
            """
            INSERT INTO flowable.task_history (task_id, event_type, old_values, new_values, comment, created_at)
            SELECT t.task_id, (ARRAY['CREATED', 'COMPLETED'])[1 + (k - 1) %% 2], '{}', jsonb_build_object('k', k),
                   'event ' || k, t.completed_at - make_interval(hours => %(history)s - k)
              FROM flowable.workflow_tasks t, generate_series(1, %(history)s) AS k
             WHERE t.task_id > %(after)s
            """,
            {"history": history_per_task, "after": after_task_id},
        )
        # Fresh statistics, as autovacuum keeps them in production: without them the planner takes the freshly
        # bulk-loaded tables for tiny ones and scans them whole for every batch.
        analyze(cursor, "flowable.workflow_tasks", "flowable.task_history")


def insert_open_tasks(count):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO flowable.workflow_tasks (name, description, queue_name, candidate_groups, status, priority,
                escalation_level, required_skills, variables, form_fields, created_at, updated_at,
                task_definition_key, delegation_state)
            SELECT 'open ' || g, '', (%s::text[])[1 + g %% 2], '{}', 'OPEN', g %% 100, 0, '{}', '{}', '[]',
                   now() - interval '400 days', now(), '', ''
              FROM generate_series(1, %s) AS g
            """,
            [QUEUES, count],
        )
        analyze(cursor, "flowable.workflow_tasks")


def scalar(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def counts():
    return {
        table: scalar(f"SELECT count(*) FROM flowable.{table}")
        for table in ("workflow_tasks", "workflow_tasks_archive", "task_history", "task_history_archive")
    }


def fingerprint(live, archive, key):
    """One checksum over every row of `live` and `archive` together, in the live table's columns."""
    columns = scalar(LIVE_TASK_COLUMNS_SQL, [f"flowable.{live}"])
    return scalar(
        f"""SELECT count(*) || ':' || md5(string_agg(md5(r::text), '' ORDER BY r.{key}))
              FROM (SELECT {columns} FROM flowable.{live}
                    UNION ALL SELECT {columns} FROM flowable.{archive}) AS r"""
    )


def run_archive_command(database_url, *args):
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "manage.py", "archive_completed_tasks", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_with_peak_rss(process, timeout=1200):
    """Wait for `process`; return (exit code, stdout, stderr, peak RSS of that child alone in MiB)."""
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, unlike RUSAGE_CHILDREN's running max
    finally:
        watchdog.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, process.stdout.read(), process.stderr.read(), usage.ru_maxrss / 1024


def wait_for_other_sessions_to_end(timeout=30):
    """A killed client's server session rolls back when the server notices; wait so its locks are gone."""
    deadline = time.monotonic() + timeout
    while scalar("""SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                     AND pid <> pg_backend_pid() AND backend_type = 'client backend'"""):
        assert time.monotonic() < deadline, "the killed run's session is still open"
        time.sleep(0.05)


@pytest.fixture
def archive_db(committed_db):
    """committed_db, plus the archive tables emptied and their month partitions dropped afterwards (by the
    superuser: the archive's history is append-only, and its partitions are the owner's)."""
    yield
    with admin_connect() as admin, admin.cursor() as cursor:
        cursor.execute("DELETE FROM flowable.task_history_archive")
        cursor.execute("DELETE FROM flowable.workflow_tasks_archive")
        cursor.execute(
            """SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent IN ('flowable.workflow_tasks_archive'::regclass, 'flowable.task_history_archive'::regclass)
                  AND c.relname NOT LIKE '%%\\_default'"""
        )
        for (partition,) in cursor.fetchall():
            cursor.execute(f"DROP TABLE {partition}")


@pytest.fixture
def database_url(archive_db):
    """conftest's database_url, without its `db` fixture: that wraps the test in a transaction the
    subprocess cannot see into, and these tests need the rows committed."""
    s = connection.settings_dict
    host = s["HOST"] or "127.0.0.1"
    if host.startswith("/"):
        return f"postgresql://{s['USER']}@/{s['NAME']}?host={host}"
    return f"postgresql://{s['USER']}:{s.get('PASSWORD') or ''}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.slow
def test_archive_moves_every_old_finished_task_and_its_history_and_keeps_the_rest(archive_db):
    insert_finished_tasks(OLD_TASKS, completed_days_ago=ARCHIVE_AFTER_DAYS + 1, spread_days=150)
    insert_finished_tasks(RECENT_TASKS, completed_days_ago=1)
    insert_open_tasks(OPEN_TASKS)
    loads_before = dict(WorkflowQueue.objects.values_list("queue_name", "current_load"))
    before = counts()
    tasks_before = fingerprint("workflow_tasks", "workflow_tasks_archive", "task_id")
    history_before = fingerprint("task_history", "task_history_archive", "event_id")

    started = time.monotonic()
    call_command("archive_completed_tasks", "--days", str(ARCHIVE_AFTER_DAYS), "--no-progress", stdout=io.StringIO())
    print(f"archived {OLD_TASKS} tasks in {time.monotonic() - started:.1f}s")

    after = counts()
    assert before["workflow_tasks"] == after["workflow_tasks"] + after["workflow_tasks_archive"]
    assert before["task_history"] == after["task_history"] + after["task_history_archive"]
    assert after["workflow_tasks_archive"] == OLD_TASKS
    assert after["task_history_archive"] == OLD_TASKS * HISTORY_PER_TASK
    assert after["workflow_tasks"] == RECENT_TASKS + OPEN_TASKS
    assert fingerprint("workflow_tasks", "workflow_tasks_archive", "task_id") == tasks_before
    assert fingerprint("task_history", "task_history_archive", "event_id") == history_before
    # All in month partitions (asked through the parent: the application role may not read a partition by name).
    default = "'flowable.workflow_tasks_archive_default'::regclass"
    assert scalar(f"SELECT count(*) FROM flowable.workflow_tasks_archive WHERE tableoid = {default}") == 0
    assert scalar("SELECT count(DISTINCT tableoid) FROM flowable.workflow_tasks_archive") >= 5  # 150 days of months
    assert dict(WorkflowQueue.objects.values_list("queue_name", "current_load")) == loads_before


@pytest.mark.slow
def test_archive_killed_mid_run_loses_nothing_and_a_second_run_finishes(database_url):
    insert_finished_tasks(OLD_TASKS, completed_days_ago=ARCHIVE_AFTER_DAYS + 1, spread_days=60)
    insert_open_tasks(OPEN_TASKS)
    before = counts()
    tasks_before = fingerprint("workflow_tasks", "workflow_tasks_archive", "task_id")
    history_before = fingerprint("task_history", "task_history_archive", "event_id")

    run = run_archive_command(database_url, "--days", str(ARCHIVE_AFTER_DAYS))
    deadline = time.monotonic() + 120
    while scalar("SELECT count(*) FROM flowable.workflow_tasks_archive") < 3 * DEFAULT_BATCH_SIZE:
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)  # no chance to clean up: whatever batch was open must roll back
    run.wait()
    wait_for_other_sessions_to_end()

    interrupted = counts()
    assert 0 < interrupted["workflow_tasks_archive"] < OLD_TASKS
    assert before["workflow_tasks"] == interrupted["workflow_tasks"] + interrupted["workflow_tasks_archive"]
    assert before["task_history"] == interrupted["task_history"] + interrupted["task_history_archive"]
    assert interrupted["task_history_archive"] == interrupted["workflow_tasks_archive"] * HISTORY_PER_TASK

    code, stdout, stderr, _ = wait_with_peak_rss(run_archive_command(database_url, "--days", str(ARCHIVE_AFTER_DAYS)))
    assert code == 0, stderr
    assert f"Archived {OLD_TASKS - interrupted['workflow_tasks_archive']} task(s)" in stdout
    after = counts()
    assert after["workflow_tasks_archive"] == OLD_TASKS
    assert after["workflow_tasks"] == OPEN_TASKS
    assert fingerprint("workflow_tasks", "workflow_tasks_archive", "task_id") == tasks_before
    assert fingerprint("task_history", "task_history_archive", "event_id") == history_before


def partitions():
    return scalar(
        """SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}') FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent IN ('flowable.workflow_tasks_archive'::regclass, 'flowable.task_history_archive'::regclass)"""
    )


@pytest.mark.slow
def test_archive_runs_in_the_same_memory_for_200000_tasks_as_for_50000(database_url):
    peaks = {}
    for count in (50_000, 200_000):
        insert_finished_tasks(count, completed_days_ago=ARCHIVE_AFTER_DAYS + 1, spread_days=90, history_per_task=1)
        code, stdout, stderr, peaks[count] = wait_with_peak_rss(
            run_archive_command(database_url, "--days", str(ARCHIVE_AFTER_DAYS))
        )
        assert code == 0, stderr
        assert f"Archived {count} task(s)" in stdout
    print(f"peak RSS: 50,000 tasks {peaks[50_000]:.1f} MiB, 200,000 tasks {peaks[200_000]:.1f} MiB")
    # Four times the rows may not cost more than allocator noise; loading the ids alone would add ~10 MiB.
    assert peaks[200_000] <= peaks[50_000] + 4


def test_two_runs_at_once_move_each_task_exactly_once(database_url):
    insert_finished_tasks(40_000, completed_days_ago=ARCHIVE_AFTER_DAYS + 1, spread_days=90)
    before = counts()
    tasks_before = fingerprint("workflow_tasks", "workflow_tasks_archive", "task_id")

    runs = [
        run_archive_command(database_url, "--days", str(ARCHIVE_AFTER_DAYS), "--batch-size", "500") for _ in range(2)
    ]
    outcomes = [run.communicate(timeout=120) + (run.returncode,) for run in runs]

    assert [code for _, _, code in outcomes] == [0, 0], outcomes
    moved = [int(stdout.split()[1]) for stdout, _, _ in outcomes]
    print(f"two runs at once moved {moved[0]} + {moved[1]} tasks")
    assert sum(moved) == 40_000
    after = counts()
    assert after["workflow_tasks"] == 0 and after["workflow_tasks_archive"] == before["workflow_tasks"]
    assert after["task_history_archive"] == before["task_history"]
    assert fingerprint("workflow_tasks", "workflow_tasks_archive", "task_id") == tasks_before


def wait_until_blocked_by(observer, holder_pid: int, run) -> int:
    """Poll until some backend waits for a lock `holder_pid` holds (the run has reached it); that backend's pid."""
    deadline = time.monotonic() + 60
    while True:
        row = observer.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [holder_pid]
        ).fetchone()
        if row:
            return row[0]
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.01)


def test_archive_interrupted_by_ctrl_c_says_so_in_one_line_and_keeps_every_row(database_url):
    """Ctrl-C arrives while the run is certainly mid-way: another transaction holds the history of the second
    batch's first task, so the run commits the first batch and then waits there; only then is SIGINT sent."""
    import psycopg

    batch = 200
    insert_finished_tasks(20_000, completed_days_ago=ARCHIVE_AFTER_DAYS + 1)
    before = counts()
    second_batch_starts_at = scalar(
        f"SELECT task_id FROM flowable.workflow_tasks ORDER BY task_id OFFSET {batch} LIMIT 1"
    )
    with psycopg.connect(database_url) as holder, psycopg.connect(database_url, autocommit=True) as observer:
        holder.execute("SELECT 1 FROM flowable.task_history WHERE task_id = %s FOR UPDATE", [second_batch_starts_at])
        run = run_archive_command(database_url, "--days", str(ARCHIVE_AFTER_DAYS), "--batch-size", str(batch))
        wait_until_blocked_by(observer, holder.info.backend_pid, run)
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=60)
        holder.rollback()

    assert run.returncode == 130, (stdout, stderr)
    assert len(stderr.strip().splitlines()) == 1
    assert f"interrupted after archiving {batch} task(s)" in stderr and "run again to continue" in stderr
    wait_for_other_sessions_to_end()
    after = counts()
    assert after["workflow_tasks_archive"] == batch  # the first batch; the second rolled back whole
    assert before["workflow_tasks"] == after["workflow_tasks"] + after["workflow_tasks_archive"]
    assert before["task_history"] == after["task_history"] + after["task_history_archive"]


def test_dry_run_reports_what_would_move_and_changes_nothing(archive_db):
    insert_finished_tasks(1_000, completed_days_ago=ARCHIVE_AFTER_DAYS + 1)
    insert_finished_tasks(10, completed_days_ago=1)
    before = counts()
    tasks_before = fingerprint("workflow_tasks", "workflow_tasks_archive", "task_id")
    partitions_before = partitions()
    out = io.StringIO()

    call_command("archive_completed_tasks", "--days", str(ARCHIVE_AFTER_DAYS), "--dry-run", stdout=out)

    assert f"would archive 1000 task(s) and {1_000 * HISTORY_PER_TASK} history event(s)" in out.getvalue()
    assert "would create partitions flowable.workflow_tasks_archive_p" in out.getvalue()
    assert counts() == before
    assert fingerprint("workflow_tasks", "workflow_tasks_archive", "task_id") == tasks_before
    assert partitions() == partitions_before


@pytest.mark.parametrize("days", ["-1", "soon"])
def test_bad_days_exits_non_zero_with_one_line(database_url, days):
    run = run_archive_command(database_url, "--days", days)
    stdout, stderr = run.communicate(timeout=60)

    assert run.returncode != 0
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert "--days" in stderr or "days must be" in stderr


def test_rows_that_reached_the_default_partition_move_into_the_new_month_partition(archive_db):
    insert_finished_tasks(10, completed_days_ago=ARCHIVE_AFTER_DAYS + 1)
    with connection.cursor() as cursor:  # a row put in the archive by hand, before its month had a partition
        cursor.execute(
            """INSERT INTO flowable.workflow_tasks_archive (task_id, task_definition_key, name, description,
                   candidate_groups, status, priority, escalation_level, required_skills, variables, form_fields,
                   created_at, completed_at, updated_at, queue_name, delegation_state)
               SELECT -1, '', 'by hand', '', '{}', 'COMPLETED', 0, 0, '{}', '{}', '[]', completed_at, completed_at,
                      completed_at, 'intake', ''
                 FROM flowable.workflow_tasks ORDER BY task_id LIMIT 1"""
        )
    in_default = "SELECT count(*) FROM flowable.workflow_tasks_archive WHERE tableoid = {}".format(
        "'flowable.workflow_tasks_archive_default'::regclass"
    )
    assert scalar(in_default) == 1

    call_command("archive_completed_tasks", "--days", str(ARCHIVE_AFTER_DAYS), stdout=io.StringIO())

    assert scalar(in_default) == 0
    assert scalar("SELECT count(*) FROM flowable.workflow_tasks_archive") == 11
    assert scalar("SELECT tableoid::regclass::text FROM flowable.workflow_tasks_archive WHERE task_id = -1").startswith(
        "flowable.workflow_tasks_archive_p"
    )


@pytest.mark.parametrize("archive", ["flowable.workflow_tasks_archive", "flowable.task_history_archive"])
def test_a_month_partition_the_archive_makes_is_granted_as_its_default_is(db, archive):
    """Made by the archive job (as the owner, through flowable.archive_partition_create), a month partition is
    granted what the migrations grant the DEFAULT one: the maintenance role reads it by name (pg_dump does), the
    application role, under row-level security, only through the parent."""
    from core.db_roles import maintenance_role
    from tests.tasks.test_history_partitioning import privileges

    name = f"{archive}_p1999_01"
    with transaction.atomic(), maintenance_role(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT flowable.archive_partition_create(%s, %s, '1999-01-01 00:00+00', '1999-02-01 00:00+00')",
            [archive, name],
        )
        assert cursor.fetchone() == (True,)

    granted = privileges(name)
    assert granted == privileges(f"{archive}_default")
    assert granted["workflow_maintenance"] >= {"SELECT", "INSERT"} and "workflow_app" not in granted
