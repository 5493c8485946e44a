"""The access audit's table: partitioned by month on read_at, its partitions made ahead by a SECURITY DEFINER
function (daily beat job, management command), rows of a month without a partition moved out of DEFAULT."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import DataError, connection
from django.db.utils import ProgrammingError
from django.utils import timezone

from core.errors import InvalidInput
from entitlements.jobs import ensure_access_audit_partitions as ensure_partitions_job
from entitlements.models import AccessAuditEntry
from entitlements.services import access_audit_partitions_ensure

pytestmark = pytest.mark.django_db

TABLE = "entitlements.access_audit"


def month_start(months_from_now: int) -> datetime:
    now = timezone.now().astimezone(UTC)
    index = now.year * 12 + now.month - 1 + months_from_now
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"entitlements.access_audit_p{month:%Y_%m}"


def sql(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def partitions() -> set[str]:
    rows = sql(
        "SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        [TABLE],
    )
    return {name for (name,) in rows}


def partition_of(entry: AccessAuditEntry) -> str:
    ((name,),) = sql(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE access_id = %s", [entry.access_id])
    return name


def read_at(moment: datetime) -> AccessAuditEntry:
    return AccessAuditEntry.objects.create(
        read_at=moment, object_type="case", object_id=1, channel="page", method="GET", path="/cases/1/"
    )


@pytest.fixture
def partitions_made():
    """This month's partition and the next two's, as the migration and the daily job make them."""
    access_audit_partitions_ensure(months_ahead=2)


def test_the_table_is_partitioned_by_range_of_read_at():
    ((strategy, key),) = sql(
        "SELECT p.partstrat, a.attname FROM pg_partitioned_table p "
        "JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] "
        "WHERE p.partrelid = %s::regclass",
        [TABLE],
    )
    assert (strategy, key) == ("r", "read_at")
    assert "entitlements.access_audit_default" in partitions()


def test_this_month_and_the_next_two_have_partitions(partitions_made):
    assert {partition_name(month_start(n)) for n in range(3)} <= partitions()


def test_ensuring_again_creates_nothing(partitions_made):
    before = partitions()

    assert access_audit_partitions_ensure(months_ahead=2) == []
    assert partitions() == before


def test_a_row_lands_in_the_partition_of_its_month(partitions_made):
    this_month = read_at(timezone.now())
    next_month = read_at(month_start(1).replace(day=2, hour=3))

    assert partition_of(this_month) == partition_name(month_start(0))
    assert partition_of(next_month) == partition_name(month_start(1))


def test_a_month_boundary_is_a_utc_midnight(partitions_made):
    first_instant = read_at(month_start(1))
    last_instant_before = read_at(month_start(1) - timezone.timedelta(microseconds=1))

    assert partition_of(first_instant) == partition_name(month_start(1))
    assert partition_of(last_instant_before) == partition_name(month_start(0))


def test_a_row_of_a_month_without_partition_waits_in_default_and_moves_to_its_month_when_created(partitions_made):
    far = read_at(month_start(5).replace(day=15))
    ancient = read_at(datetime(2001, 1, 1, tzinfo=UTC))
    assert partition_of(far) == partition_of(ancient) == "entitlements.access_audit_default"

    created = access_audit_partitions_ensure(months_ahead=5)

    assert created == [partition_name(month_start(n)) for n in (3, 4, 5)]
    assert partition_of(far) == partition_name(month_start(5))  # same access_id, now in its month
    assert partition_of(ancient) == "entitlements.access_audit_default"  # no month of its own is made
    assert AccessAuditEntry.objects.filter(access_id=far.access_id, read_at=far.read_at).exists()
    assert access_audit_partitions_ensure(months_ahead=5) == []
    # The new DEFAULT partition is a partition like the old one: rows still route there.
    assert partition_of(read_at(datetime(2002, 1, 1, tzinfo=UTC))) == "entitlements.access_audit_default"


def test_new_partitions_have_the_tables_indexes(partitions_made):
    access_audit_partitions_ensure(months_ahead=3)
    rows = sql("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [partition_name(month_start(3)).split(".")[1]])
    definitions = " ".join(d for (d,) in rows)
    assert "(object_type, object_id, read_at DESC)" in definitions
    assert "(reader_id, read_at DESC)" in definitions
    assert "(access_id, read_at)" in definitions


@pytest.mark.parametrize("months_ahead", [-1, 25, True, "2"])
def test_months_ahead_out_of_range_is_refused(months_ahead):
    with pytest.raises(InvalidInput):
        access_audit_partitions_ensure(months_ahead=months_ahead)


def test_the_function_itself_refuses_a_range_out_of_bounds():
    with pytest.raises((DataError, ProgrammingError), match="months ahead must be from 0 to 24"):
        sql("SELECT * FROM entitlements.ensure_access_audit_partitions(25)")


def test_the_function_runs_as_its_owner_with_a_pinned_search_path_and_is_not_granted_to_public():
    ((definer, config, public_may_execute),) = sql(
        "SELECT p.prosecdef, p.proconfig, "
        "EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
        "        WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') "
        "FROM pg_proc p WHERE p.oid = 'entitlements.ensure_access_audit_partitions(integer)'::regprocedure"
    )
    assert definer is True
    assert "search_path=pg_catalog, entitlements, pg_temp" in config
    assert public_may_execute is False


def test_the_table_matches_the_model():
    """The table is made in SQL (migration 0011) and the model states it: the two must agree."""
    columns = {
        name: (data_type, not_null)
        for name, data_type, not_null in sql(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            [TABLE],
        )
    }
    aliases = {"timestamp with time zone": "timestamp with time zone", "bigint": "bigint", "inet": "inet"}
    expected = {}
    for field in AccessAuditEntry._meta.concrete_fields:
        db_type = field.db_type(connection)
        db_type = aliases.get(db_type, db_type.replace("varchar", "character varying"))
        expected[field.column] = (db_type, not field.null)
    assert columns == expected
    constraints = {name for (name,) in sql("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass", [TABLE])}
    assert {c.name for c in AccessAuditEntry._meta.constraints} | {"access_audit_pkey"} == constraints
    indexes = {
        name
        for (name,) in sql(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'entitlements' AND tablename = 'access_audit'"
        )
    }
    assert {i.name for i in AccessAuditEntry._meta.indexes} | {"access_audit_pkey"} == indexes
    ((key,),) = sql(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'", [TABLE]
    )
    assert key == "PRIMARY KEY (access_id, read_at)"
    assert AccessAuditEntry._meta.pk_fields == [AccessAuditEntry._meta.get_field(n) for n in ("access_id", "read_at")]


def test_the_database_numbers_each_row():
    first, second = read_at(timezone.now()), read_at(timezone.now())

    assert first.access_id and second.access_id > first.access_id


def test_the_management_command_says_what_it_created(partitions_made, capsys):
    call_command("ensure_access_audit_partitions", "--months-ahead", "3")
    assert partition_name(month_start(3)) in capsys.readouterr().out

    call_command("ensure_access_audit_partitions", "--months-ahead", "3")
    assert "Every partition exists already." in capsys.readouterr().out


def test_the_management_command_refuses_a_bad_range():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="from 0 to 24"):
        call_command("ensure_access_audit_partitions", "--months-ahead", "99")


def test_the_daily_beat_job_is_scheduled_and_runs_the_service(partitions_made):
    from django_celery_beat.models import PeriodicTask

    from workflow_project.celery import app

    job = PeriodicTask.objects.get(task="entitlements.ensure_access_audit_partitions")
    assert job.enabled and job.crontab is not None
    assert (job.crontab.minute, job.crontab.hour, job.crontab.day_of_week) == ("10", "0", "*")
    app.loader.import_default_modules()
    assert "entitlements.ensure_access_audit_partitions" in app.tasks
    assert ensure_partitions_job.apply().get() == {"created": []}
