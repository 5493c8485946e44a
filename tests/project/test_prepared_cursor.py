"""workflow_project.db.prepared_cursor: statements parsed and planned once per connection, still seen by Django."""
import pytest
from django.db import connection, utils
from django.test.utils import CaptureQueriesContext

from workflow_project.db import prepared_cursor

pytestmark = pytest.mark.django_db

STATEMENT = "SELECT %s::int + 1 AS prepared_cursor_probe"


def prepared_statements():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%%prepared_cursor_probe%%'")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_is_prepared_once_and_reused():
    for value in (1, 2, 3):
        with prepared_cursor() as cursor:
            cursor.execute(STATEMENT, [value])
            assert cursor.fetchone() == (value + 1,)
    assert prepared_statements() == ["SELECT $1::int + 1 AS prepared_cursor_probe"]


def test_django_sees_the_statement_and_translates_its_errors():
    with CaptureQueriesContext(connection) as captured:
        with prepared_cursor() as cursor:
            cursor.execute(STATEMENT, [41])
    assert [query["sql"] for query in captured.captured_queries] == [STATEMENT.replace("%s", "41")]
    with pytest.raises(utils.ProgrammingError):
        with prepared_cursor() as cursor:
            cursor.execute("SELECT no_such_column_anywhere FROM entitlements.users")
