"""Tables live in the four PostgreSQL schemas of the design, with the seed's indexes."""
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

EXPECTED_TABLES = {
    "entitlements": {"departments", "users", "skills", "workflow_roles", "user_role_assignments", "security_events"},
    "queues": {"workflow_queues", "queue_statistics", "queue_user_permissions", "queue_group_permissions"},
    "flowable": {"workflow_definitions", "process_instances", "workflow_tasks", "task_history"},
    "onecms": {"cases", "case_workflow_mapping", "case_events"},
}


def tables_in(schema):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("schema", sorted(EXPECTED_TABLES))
def test_schema_holds_its_tables(schema):
    assert EXPECTED_TABLES[schema] <= tables_in(schema)


def index_definition(name):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'flowable' AND indexname = %s", [name])
        row = cursor.fetchone()
    assert row, f"index {name} is missing"
    return row[0]


def test_queue_status_priority_index_matches_the_seed():
    definition = index_definition("idx_workflow_tasks_queue_status_priority")
    assert "(queue_name, status, priority DESC, created_at)" in definition


def test_candidate_groups_index_is_gin():
    assert "USING gin (candidate_groups)" in index_definition("idx_workflow_tasks_candidate_groups")


def test_overdue_index_is_partial_on_active_tasks():
    definition = index_definition("idx_workflow_tasks_overdue")
    assert "(due_date)" in definition
    assert "'OPEN'" in definition and "'CLAIMED'" in definition


def test_claim_index_is_partial_on_open_tasks():
    definition = index_definition("idx_workflow_tasks_claim_open")
    assert "(queue_name, priority DESC, created_at, task_id)" in definition
    assert "WHERE" in definition and "'OPEN'" in definition
