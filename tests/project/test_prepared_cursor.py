"""workflow_project.db.prepared_cursor: statements parsed and planned once per connection, still seen by Django."""
import pytest
from django.db import connection, utils
from django.test.utils import CaptureQueriesContext

from workflow_project.db import prepared_cursor

STATEMENT = "SELECT %s::int + 1 AS prepared_cursor_probe"


def prepared_statements():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%%prepared_cursor_probe%%'")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_a_statement_is_prepared_once_and_reused():
    for value in (1, 2, 3):
        with prepared_cursor() as cursor:
            cursor.execute(STATEMENT, [value])
            assert cursor.fetchone() == (value + 1,)
    assert prepared_statements() == ["SELECT $1::int + 1 AS prepared_cursor_probe"]


@pytest.mark.django_db
def test_django_sees_the_statement_and_translates_its_errors():
    with CaptureQueriesContext(connection) as captured:
        with prepared_cursor() as cursor:
            cursor.execute(STATEMENT, [41])
    assert [query["sql"] for query in captured.captured_queries] == [STATEMENT.replace("%s", "41")]
    with pytest.raises(utils.ProgrammingError):
        with prepared_cursor() as cursor:
            cursor.execute("SELECT no_such_column_anywhere FROM entitlements.users")


# --- prepared_fetch_one: the same statement on a cursor the connection keeps ---------------------------------------


def kept_cursor():
    return getattr(connection.connection, "_workflow_prepared_cursor", None)


@pytest.mark.django_db
def test_fetch_one_keeps_one_cursor_per_connection_and_prepares_the_statement_once():
    from workflow_project.db import prepared_fetch_one

    assert prepared_fetch_one(STATEMENT, [1]) == (2,)
    cursor = kept_cursor()
    assert cursor is not None
    assert [prepared_fetch_one(STATEMENT, [value]) for value in (2, 3)] == [(3,), (4,)]
    assert kept_cursor() is cursor
    assert prepared_statements() == ["SELECT $1::int + 1 AS prepared_cursor_probe"]
    assert prepared_fetch_one("SELECT 1 WHERE %s::int < 0", [1]) is None


def test_a_new_connection_gets_its_own_kept_cursor(committed_db):
    from workflow_project.db import prepared_fetch_one

    prepared_fetch_one(STATEMENT, [1])
    old = kept_cursor()
    connection.close()
    assert prepared_fetch_one(STATEMENT, [5]) == (6,)
    assert kept_cursor() is not old and kept_cursor().connection is connection.connection


@pytest.mark.django_db
def test_fetch_one_errors_are_djangos_and_a_broken_transaction_is_refused():
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    from workflow_project.db import prepared_fetch_one

    with pytest.raises(utils.ProgrammingError):
        with transaction.atomic():
            prepared_fetch_one("SELECT no_such_column_anywhere FROM entitlements.users", [])
    with transaction.atomic():
        with pytest.raises(utils.DataError):
            with transaction.atomic():  # a savepoint: the transaction goes on
                prepared_fetch_one("SELECT 1 / %s::int AS read_only_probe", [0])
        assert prepared_fetch_one(STATEMENT, [1]) == (2,)
        with pytest.raises(utils.DataError):
            with transaction.atomic(savepoint=False):  # no savepoint: the whole transaction must roll back
                prepared_fetch_one("SELECT 1 / %s::int AS read_only_probe", [0])
        with pytest.raises(TransactionManagementError):
            prepared_fetch_one(STATEMENT, [1])


@pytest.mark.django_db
def test_fetch_one_is_seen_by_query_logging_and_execute_wrappers():
    from workflow_project.db import prepared_fetch_one

    with CaptureQueriesContext(connection) as captured:
        assert prepared_fetch_one(STATEMENT, [41]) == (42,)
    assert [query["sql"] for query in captured.captured_queries] == [STATEMENT.replace("%s", "41")]
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        assert prepared_fetch_one(STATEMENT, [7]) == (8,)
    assert seen == [(STATEMENT, [7])]


# --- RowReader: hand-written SELECTs build the instances the ORM would -------------------------------------------


@pytest.mark.django_db
def test_a_row_reader_instance_equals_the_orm_instance_field_for_field(make_task):
    from tasks.models import WorkflowTask
    from workflow_project.db import row_reader

    task = make_task("intake", variables={"amount": 5, "nested": {"a": [1, 2]}}, form_fields=[{"id": "ok"}],
                     required_skills=["fraud"])
    reader = row_reader(WorkflowTask)
    with prepared_cursor() as cursor:
        cursor.execute(f"SELECT {reader.columns_of('t')} FROM flowable.workflow_tasks t WHERE t.task_id = %s", [task.pk])
        built = reader.instance(cursor.fetchone())
    loaded = WorkflowTask.objects.get(pk=task.pk)
    assert {name: getattr(built, name) for name in reader.attnames} == {
        name: getattr(loaded, name) for name in reader.attnames
    }
    assert isinstance(built.variables, dict) and built._state.adding is False and built._state.db == "default"



@pytest.mark.django_db
def test_a_row_reader_instance_has_the_attributes_and_state_of_the_orms(make_task):
    from tasks.models import WorkflowTask
    from workflow_project.db import row_reader

    task = make_task("intake")
    reader = row_reader(WorkflowTask)
    built = reader.instance(prepared_fetch_one_row(reader, task.pk))
    loaded = WorkflowTask.objects.get(pk=task.pk)
    assert vars(built).keys() == vars(loaded).keys()
    assert (built._state.adding, built._state.db) == (loaded._state.adding, loaded._state.db)
    assert built.queue.queue_name == "intake"  # related objects load as on an ORM instance
    built.priority = 7
    built.save(update_fields=["priority"])
    assert WorkflowTask.objects.get(pk=task.pk).priority == 7


def prepared_fetch_one_row(reader, task_id):
    from workflow_project.db import prepared_fetch_one

    return prepared_fetch_one(f"SELECT {reader.columns} FROM flowable.workflow_tasks WHERE task_id = %s", [task_id])


@pytest.mark.django_db
def test_a_row_reader_runs_init_signals_when_a_receiver_is_connected(make_task):
    from django.db.models.signals import post_init

    from tasks.models import WorkflowTask
    from workflow_project.db import row_reader

    task = make_task("intake")
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    post_init.connect(receiver, sender=WorkflowTask)
    try:
        built = row_reader(WorkflowTask).instance(prepared_fetch_one_row(row_reader(WorkflowTask), task.pk))
    finally:
        post_init.disconnect(receiver, sender=WorkflowTask)
    assert seen == [task.pk] and built.pk == task.pk


def test_a_row_reader_stores_values_itself_only_where_init_would_do_nothing_else(monkeypatch):
    from django.db.models import Model
    from django_celery_beat.models import CrontabSchedule

    from tasks.models import WorkflowTask
    from workflow_project.db import _init_only_stores_values

    assert _init_only_stores_values(WorkflowTask)
    # django-timezone-field's attribute turns a stored name into a ZoneInfo when set.
    assert not _init_only_stores_values(CrontabSchedule)
    with monkeypatch.context() as patched:
        patched.setattr(WorkflowTask, "__init__", lambda self, *args, **kwargs: Model.__init__(self, *args, **kwargs))
        assert not _init_only_stores_values(WorkflowTask)
    with monkeypatch.context() as patched:
        patched.setattr(WorkflowTask, "name", property(lambda self: "", lambda self, value: None))
        assert not _init_only_stores_values(WorkflowTask)
    assert _init_only_stores_values(WorkflowTask)
