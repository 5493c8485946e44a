"""Every function, view, materialized view and trigger in the database is what its `<app>/sql/<name>.sql` says."""

import re

import pytest
from django.conf import settings

from tests.project.sql_sources import DRIFT, NO_FILE, NO_OBJECT, Problem, check, sql_files


@pytest.fixture
def owner(owner_connection):
    return owner_connection


def report(problems: list[Problem]) -> str:
    return "\n\n".join(str(problem) for problem in problems)


def run(owner, sql: str) -> None:
    with owner.cursor() as cursor:
        cursor.execute(sql)


def test_every_object_in_our_schemas_has_a_file_and_every_file_an_object(owner):
    problems = [p for p in check(owner) if p.problem in (NO_FILE, NO_OBJECT)]
    assert not problems, report(problems)


def test_every_file_defines_its_object_as_the_database_holds_it(owner):
    problems = [p for p in check(owner) if p.problem == DRIFT]
    assert not problems, report(problems)


def test_the_files_cover_functions_views_materialized_views_and_triggers_of_every_schema_we_write_sql_in():
    names = sql_files().keys()
    assert {
        "flowable.claim_next_task",
        "flowable.v_queue_performance_dashboard",
        "flowable.mv_queue_performance",
        "entitlements.queue_ids_for",
        "queues.workflow_queues_scope_bumps_access_epoch",
        "flowable.workflow_tasks_in_acting_queues",
        "flowable.workflow_tasks_of_visible_cases",
    } <= names


# Each change is made inside the owner connection's transaction and rolled back with it.
CHANGES = {
    "entitlements.bump_access_epoch": """
        CREATE OR REPLACE FUNCTION entitlements.bump_access_epoch() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RETURN NULL;  -- forgets to bump
        END
        $$""",
    "flowable.claim_next_task": "ALTER FUNCTION flowable.claim_next_task(bigint, text[], text[], bigint) RESET ALL",
    "flowable.v_queue_performance_dashboard": """
        CREATE OR REPLACE VIEW flowable.v_queue_performance_dashboard AS
        SELECT q.queue_name, q.current_load, q.max_capacity, 0::bigint AS open_tasks, 0::bigint AS claimed_tasks,
               0::bigint AS escalated_tasks, 0::numeric AS avg_age_hours
          FROM queues.workflow_queues q""",
    "flowable.mv_queue_throughput_hourly": "DROP INDEX flowable.mv_queue_throughput_hourly_key",
    "queues.workflow_queues_scope_bumps_access_epoch": """
        CREATE OR REPLACE TRIGGER workflow_queues_scope_bumps_access_epoch
            AFTER UPDATE OF queue_name ON queues.workflow_queues
            FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch()""",
    "entitlements.users_active_bumps_access_epoch": "ALTER TABLE entitlements.users DISABLE TRIGGER users_active_bumps_access_epoch",
    "flowable.workflow_tasks_in_acting_queues": """
        ALTER POLICY workflow_tasks_in_acting_queues ON flowable.workflow_tasks USING (true)""",
    "onecms.case_events_of_visible_cases": """
        ALTER POLICY case_events_of_visible_cases ON onecms.case_events TO workflow_app""",
}


def test_a_table_whose_row_level_security_is_turned_off_drifts_from_each_of_its_policies(owner):
    run(owner, "ALTER TABLE onecms.case_workflow_mapping DISABLE ROW LEVEL SECURITY")

    problems = check(owner)

    assert {(p.name, p.problem) for p in problems} == {
        ("onecms.case_workflow_mapping_all_for_system", DRIFT),
        ("onecms.case_workflow_mapping_all_read_by_superuser", DRIFT),
        ("onecms.case_workflow_mapping_of_visible_cases", DRIFT),
    }, report(problems)


@pytest.mark.parametrize("name", CHANGES)
def test_an_object_changed_in_the_database_is_reported_by_name(owner, name):
    run(owner, CHANGES[name])

    problems = check(owner)

    assert [(p.name, p.problem) for p in problems] == [(name, DRIFT)], report(problems)


def test_the_report_shows_how_the_database_differs_from_the_file(owner):
    run(owner, CHANGES["entitlements.bump_access_epoch"])

    (problem,) = check(owner)

    assert "-            RETURN NULL;  -- forgets to bump" in problem.detail
    assert "+    UPDATE entitlements.access_epoch SET epoch = epoch + 1;" in problem.detail


def test_a_function_made_without_a_file_is_reported(owner):
    run(owner, "CREATE FUNCTION flowable.stray() RETURNS int LANGUAGE sql AS 'SELECT 1'")

    assert [(p.name, p.problem) for p in check(owner)] == [("flowable.stray", NO_FILE)]


def test_a_file_whose_object_the_migrations_never_made_is_reported(owner, tmp_path):
    stray = tmp_path / "stray.sql"
    stray.write_text("CREATE OR REPLACE FUNCTION flowable.stray() RETURNS int LANGUAGE sql AS 'SELECT 1';\n")

    problems = check(owner, {**sql_files(), "flowable.stray": stray})

    assert [(p.name, p.problem) for p in problems] == [("flowable.stray", NO_OBJECT)]


def test_a_file_that_makes_a_new_overload_instead_of_replacing_its_function_is_reported(owner, tmp_path):
    changed = tmp_path / "queue_ids_for.sql"
    changed.write_text(
        sql_files()["entitlements.queue_ids_for"].read_text().replace("p_at timestamptz)", "p_at timestamp)", 1)
    )

    problems = check(owner, {**sql_files(), "entitlements.queue_ids_for": changed})

    assert [(p.name, p.problem) for p in problems] == [("entitlements.queue_ids_for", DRIFT)]


def test_no_migration_imports_another_or_derives_sql_from_another():
    """Each migration holds the full text of what it runs: none imports another migration to reuse or edit its SQL."""
    another_migration = re.compile(r"import_module\(|\b(from|import)\s+(cases|entitlements|queues|tasks)\.migrations")
    offending = [
        str(path.relative_to(settings.BASE_DIR))
        for path in sorted(settings.BASE_DIR.glob("*/migrations/0*.py"))
        if another_migration.search(path.read_text()) or ".replace(" in path.read_text()
    ]
    assert offending == []
