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
    # The seed's columns, then task_id and (for row-level security's policies) process_instance_id: the task list's
    # keyset probes (core/pagination.py) read the index alone.
    assert "(queue_name, status, priority DESC, created_at, task_id) INCLUDE (process_instance_id)" in definition


def test_overdue_index_is_partial_on_active_tasks():
    definition = index_definition("idx_workflow_tasks_overdue")
    assert "(due_date)" in definition
    assert "'OPEN'" in definition and "'CLAIMED'" in definition


def test_claim_index_is_partial_on_open_tasks():
    definition = index_definition("idx_workflow_tasks_claim_open")
    assert "(queue_name, effective_priority DESC, created_at, task_id) INCLUDE (process_instance_id)" in definition
    assert "WHERE" in definition and "'OPEN'" in definition


def test_queue_active_index_is_partial_on_active_tasks_newest_first():
    definition = index_definition("idx_workflow_tasks_queue_active")
    assert "(queue_name, task_id DESC)" in definition
    assert "'OPEN'" in definition and "'CLAIMED'" in definition


def test_no_task_index_is_a_prefix_of_another():
    """Every non-HOT update of a task (claim, release, completion) writes into every index: no passengers."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, i.indkey::text, i.indpred IS NOT NULL, am.amname "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
            "WHERE i.indrelid = 'flowable.workflow_tasks'::regclass AND i.indexprs IS NULL"
        )
        indexes = [(name, keys.split(), partial, method) for name, keys, partial, method in cursor.fetchall()]
    full_btrees = [(name, keys) for name, keys, partial, method in indexes if not partial and method == "btree"]
    redundant = [
        (short, long)
        for short, short_keys in full_btrees
        for long, long_keys in full_btrees
        if short != long and len(short_keys) < len(long_keys) and long_keys[: len(short_keys)] == short_keys
    ]
    assert redundant == []
