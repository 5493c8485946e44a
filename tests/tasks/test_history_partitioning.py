"""flowable.task_history partitioned by month (tasks/history_partitioning.py): the partitions, the daily job, and
the online move of a single table while claims go on."""

import threading
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from core.owner import connected_as_owner
from entitlements.models import User
from queues.models import WorkflowQueue
from tasks import services
from tasks.history_partitioning import (
    task_history_partition,
    task_history_partition_in_place,
    task_history_partitioning_abandon,
    task_history_partitioning_status,
    task_history_partitions_ensure,
    task_history_unpartition,
)
from tasks.models import TaskHistory, WorkflowTask
from tests.project.sql_sources import check
from tests.roles import owner_connect
from tests.tasks.test_concurrency import insert_open_tasks, run_in_threads


def month_start(months_from_now: int) -> datetime:
    now = datetime.now(UTC)
    month = now.month - 1 + months_from_now
    return datetime(now.year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def sql(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def relkind() -> str:
    return sql("SELECT relkind FROM pg_class WHERE oid = 'flowable.task_history'::regclass")[0][0]


def partition_of(event_id: int) -> str:
    return sql("SELECT tableoid::regclass::text FROM flowable.task_history WHERE event_id = %s", [event_id])[0][0]


def history_rows() -> list[tuple]:
    return sql("SELECT t::text FROM flowable.task_history t ORDER BY event_id")


def as_owner(step):
    """Run `step(cursor)` in one committed transaction as the owner role."""
    with connected_as_owner(), transaction.atomic(), connection.cursor() as cursor:
        return step(cursor)


def test_the_history_is_partitioned_by_range_of_created_at_with_this_and_next_month(db):
    assert relkind() == "p"
    assert sql("SELECT pg_get_partkeydef('flowable.task_history'::regclass)") == [("RANGE (created_at)",)]
    partitions = task_history_partitioning_status().partitions
    assert {f"flowable.task_history_p{month_start(0):%Y_%m}", f"flowable.task_history_p{month_start(1):%Y_%m}"} <= set(
        partitions
    )
    assert "flowable.task_history_default" in partitions
    # The key holds the partition key; event_id still comes from one identity sequence.
    assert sql(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'flowable.task_history'::regclass "
        "AND contype = 'p'"
    ) == [("PRIMARY KEY (event_id, created_at)",)]


def test_an_event_lands_in_the_partition_of_its_month(make_task, caseworker_alice):
    task = make_task("triage")
    event = services.task_claim(user=caseworker_alice, task_id=task.pk).history.latest("event_id")
    assert partition_of(event.event_id) == f"flowable.task_history_p{month_start(0):%Y_%m}"


def test_the_daily_job_makes_the_months_ahead_and_moves_early_events_out_of_default(make_task):
    task = make_task("triage")
    later = TaskHistory.objects.create(task=task, event_type="COMMENTED", created_at=month_start(3).replace(day=2))
    assert partition_of(later.event_id) == "flowable.task_history_default"

    created = task_history_partitions_ensure(months_ahead=3)

    assert created == [f"flowable.task_history_p{month_start(m):%Y_%m}" for m in (2, 3)]
    assert partition_of(later.event_id) == f"flowable.task_history_p{month_start(3):%Y_%m}"
    assert task_history_partitions_ensure(months_ahead=3) == []
    # The new partitions get the table's indexes and its append-only trigger.
    name = f"task_history_p{month_start(2):%Y_%m}"
    indexes = [d for (d,) in sql("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [name])]
    assert any("(task_id, created_at)" in d for d in indexes) and any("(event_id, created_at)" in d for d in indexes)
    triggers = sql(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [f"flowable.{name}"]
    )
    assert triggers == [("task_history_append_only",)]


def privileges(table: str) -> dict[str, set[str]]:
    """Each role's own privileges on `table`, from its ACL (not what it holds through another role)."""
    rows = sql(
        "SELECT r.rolname, a.privilege_type FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "JOIN pg_roles r ON r.oid = a.grantee WHERE c.oid = %s::regclass AND a.grantee <> c.relowner",
        [table],
    )
    granted = {}
    for role, privilege in rows:
        granted.setdefault(role, set()).add(privilege)
    return granted


def test_the_partitions_the_job_makes_are_granted_as_the_migrations_grant_them(make_task):
    """A month partition and a new DEFAULT made by the daily job (as the owner) get what their parent grants to the
    roles that bypass row-level security: the maintenance role dumps and archives them by name. The application
    role, under row-level security, reaches the rows through the parent only, as for the partitions the migrations
    made."""
    task = make_task("triage")
    TaskHistory.objects.create(task=task, event_type="COMMENTED", created_at=month_start(4).replace(day=2))
    made_by_migrate = privileges(f"flowable.task_history_p{month_start(0):%Y_%m}")
    assert made_by_migrate["workflow_maintenance"] >= {"SELECT", "INSERT", "UPDATE", "DELETE"}

    created = task_history_partitions_ensure(months_ahead=4)

    assert f"flowable.task_history_p{month_start(4):%Y_%m}" in created
    for table in [*created, "flowable.task_history_default"]:  # the DEFAULT was made again: a row moved out
        assert privileges(table) == made_by_migrate, table
        assert "workflow_app" not in privileges(table)
        assert sql("SELECT has_table_privilege('workflow_maintenance', %s, 'SELECT')", [table]) == [(True,)]


def test_the_application_role_may_make_partitions_only_through_the_function(db):
    rows = sql(
        "SELECT p.prosecdef, has_function_privilege('workflow_app', p.oid, 'EXECUTE') FROM pg_proc p "
        "WHERE p.oid IN ('flowable.ensure_task_history_partitions(integer)'::regprocedure, "
        "'entitlements.month_partitions_ensure(regclass, integer)'::regprocedure) ORDER BY p.proname"
    )
    assert rows == [(True, True), (False, False)]  # ensure_task_history_partitions, month_partitions_ensure


@pytest.mark.parametrize("months_ahead", [-1, 25, "2", True])
def test_months_ahead_out_of_range_is_refused(db, months_ahead):
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="months ahead"):
        task_history_partitions_ensure(months_ahead=months_ahead)


def test_the_daily_job_is_scheduled(db):
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.get(name="Task history partitions").task == "workflow.ensure_task_history_partitions"


# --- The online move of a single table ---------------------------------------------------------------------------


@pytest.fixture
def single_table(committed_db):
    """flowable.task_history as one table (as before migration 0026), partitioned again afterwards whatever
    happened."""
    as_owner(task_history_unpartition)
    assert relkind() == "r"
    try:
        yield
    finally:
        with connected_as_owner():
            task_history_partitioning_abandon()
        as_owner(task_history_partition_in_place)


def events_in_past_months(count: int) -> None:
    """`count` history events of new CLOSED tasks, spread over the last four months."""
    insert_open_tasks(count // 4, ["triage"])
    sql(
        """
        INSERT INTO flowable.task_history (task_id, event_type, old_values, new_values, comment, created_at)
        SELECT t.task_id, 'COMMENTED', '{}', jsonb_build_object('n', g), '', now() - (g %% 120) * interval '1 day'
          FROM (SELECT task_id, row_number() OVER (ORDER BY task_id) AS n FROM flowable.workflow_tasks) t
          JOIN generate_series(1, %s) AS g ON t.n = 1 + g %% %s
        """,
        [count, count // 4],
    )


def definitions_of_the_table() -> list:
    """The table's triggers and policies as the catalog holds them (they must survive the move unchanged)."""
    return sql(
        "SELECT 'trigger', tgname, pg_get_triggerdef(oid), tgenabled::text FROM pg_trigger "
        "WHERE tgrelid = 'flowable.task_history'::regclass AND NOT tgisinternal "
        "UNION ALL SELECT 'policy', polname, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) "
        "FROM pg_policy WHERE polrelid = 'flowable.task_history'::regclass ORDER BY 1, 2"
    )


@pytest.mark.slow
def test_the_single_table_moves_online_while_claims_go_on(single_table):
    before_definitions = definitions_of_the_table()
    events_in_past_months(4000)
    WorkflowQueue.objects.filter(queue_name="intake").update(max_capacity=100_000)
    insert_open_tasks(3000, ["intake"])
    alice, carol = User.objects.get(username="alice"), User.objects.get(username="carol")
    before = history_rows()
    claimed: list[int] = []
    moving = threading.Event()
    moving.set()

    def claimer(user):
        def run():
            while moving.is_set():
                task = services.task_claim_next(user=user, queue_names=["intake"])
                if task is None:
                    return
                claimed.append(task.task_id)
                services.task_complete(user=user, task_id=task.task_id)

        return run

    batches: list[int] = []

    def mover():
        try:
            with connected_as_owner():
                task_history_partition(batch_size=500, duty=0.5, on_batch=lambda c, up_to, t: batches.append(up_to))
        finally:
            moving.clear()

    errors = run_in_threads([claimer(alice), claimer(carol), mover])

    assert errors == []
    assert relkind() == "p" and len(batches) >= 8
    assert len(claimed) == len(set(claimed)) > 0
    after = history_rows()
    assert set(before) <= set(after)  # every event from before, unchanged
    claimed_events = TaskHistory.objects.filter(task_id__in=claimed, event_type__in=["CLAIMED", "COMPLETED"])
    assert claimed_events.count() == 2 * len(claimed)  # every event written during the move, once
    assert len(after) == len(before) + 2 * len(claimed)
    # Four past months and the next each have a partition; numbering goes on above the highest event.
    months = {name for (name,) in sql("SELECT DISTINCT tableoid::regclass::text FROM flowable.task_history")}
    assert f"flowable.task_history_p{month_start(-3):%Y_%m}" in months
    assert "flowable.task_history_default" not in months
    new_task = WorkflowTask.objects.filter(status="OPEN").first() or WorkflowTask.objects.first()
    newest = TaskHistory.objects.create(task=new_task, event_type="COMMENTED")
    assert newest.event_id > max(TaskHistory.objects.exclude(pk=newest.pk).values_list("event_id", flat=True))
    # Same triggers and policies, the application role's grants, and the SQL files still describe the database.
    assert definitions_of_the_table() == before_definitions
    assert sql("SELECT has_table_privilege('workflow_app', 'flowable.task_history', 'INSERT')") == [(True,)]
    assert sql(
        "SELECT has_table_privilege('workflow_app', %s, 'SELECT')", [f"flowable.task_history_p{month_start(0):%Y_%m}"]
    ) == [(False,)]
    with owner_connect() as owner:
        assert [p for p in check(owner) if "task_history" in p.name] == []


def test_an_interrupted_move_resumes_where_the_copy_ended(single_table):
    events_in_past_months(2000)
    before = history_rows()

    def interrupt_after_two(copied, up_to, target):
        if up_to >= 2 * 300:
            raise KeyboardInterrupt

    with connected_as_owner(), pytest.raises(KeyboardInterrupt):
        task_history_partition(batch_size=300, on_batch=interrupt_after_two)
    with connected_as_owner():
        status = task_history_partitioning_status()
    assert status.in_progress and not status.partitioned
    assert 0 < status.copied_up_to < status.backfill_target

    with connected_as_owner():
        result = task_history_partition(batch_size=300)

    assert (
        result.rows_copied
        == len(before)
        - sql("SELECT count(*) FROM flowable.task_history WHERE event_id <= %s", [status.copied_up_to])[0][0]
    )
    assert relkind() == "p" and history_rows() == before


def test_abandoning_drops_the_copy_and_keeps_the_single_table(single_table):
    events_in_past_months(400)

    def interrupt(copied, up_to, target):
        raise KeyboardInterrupt

    with connected_as_owner(), pytest.raises(KeyboardInterrupt):
        task_history_partition(batch_size=100, on_batch=interrupt)
    with connected_as_owner():
        assert task_history_partitioning_abandon() is True
    assert relkind() == "r"
    assert sql("SELECT to_regclass('flowable.task_history_partitioned')") == [(None,)]
    assert sql("SELECT count(*) FROM pg_trigger WHERE tgname = 'task_history_mirror'") == [(0,)]


def test_the_command_says_where_the_history_stands_and_partitions_it(single_table, capsys):
    events_in_past_months(400)
    call_command("partition_task_history", "--status")
    assert "One table, about" in capsys.readouterr().out

    call_command("partition_task_history", "--batch-size", "150", "--no-progress")
    assert "Partitioned: copied 400 events in 3 batches" in capsys.readouterr().out

    call_command("partition_task_history", "--status")
    assert "Partitioned:" in capsys.readouterr().out
    call_command("partition_task_history")
    assert "partitioned already" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [(["--batch-size", "many"], "--batch-size must be a number"), (["--batch-size", "0"], "batch size must be")],
)
def test_the_command_refuses_a_bad_option_in_one_line(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("partition_task_history", *args)


def test_migrate_moves_a_small_history_itself_and_leaves_a_large_one_to_the_command(single_table, monkeypatch):
    from tasks import history_partitioning

    events_in_past_months(400)
    monkeypatch.setattr(history_partitioning, "MIGRATE_IN_PLACE_MAX_ROWS", 399)
    assert as_owner(task_history_partition_in_place) is False
    assert relkind() == "r"

    monkeypatch.setattr(history_partitioning, "MIGRATE_IN_PLACE_MAX_ROWS", 400)
    before = history_rows()
    assert as_owner(task_history_partition_in_place) is True
    assert relkind() == "p" and history_rows() == before


def test_the_command_refuses_a_bad_duty_in_one_line(db):
    with pytest.raises(CommandError, match="duty must be between"):
        call_command("partition_task_history", "--duty", "0")
