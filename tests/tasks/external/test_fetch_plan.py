"""Fetch-and-lock keeps to index probes when the statistics lag behind a burst of new items.

After a table is emptied and analyzed (as retention and autovacuum leave it) the planner believes it holds no rows
until the next automatic ANALYZE, up to a minute later. A burst of new items in that minute must still be fetched
by probing idx_external_tasks_fetch in order and looking each item's instance up by key: the statement that joined
items and instances ran as a nested loop reading every instance for every item (seconds a fetch at 2,000 items,
past the statement timeout with 16 workers).
"""

from django.db import connection, transaction
from django.utils import timezone

from core.db_roles import maintenance_role
from entitlements.models import User
from entitlements.row_scope import system_scope
from tasks.bpmn import workflows
from tasks.external import services
from tests.conftest import CLEANUP_SQL
from tests.roles import analyze
from tests.tasks.test_query_plans import nodes

from .conftest import RECORDS_CHECK_FILE, TOPIC, start_instances

EARLIER = 300
BURST = 300
# Versions of the earlier rows written before they are deleted: the pages a busier past leaves behind.
VERSIONS = 10


def fetch_plan(worker, topic_names):
    with transaction.atomic(), system_scope(), connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + services.FETCH_AND_LOCK_SQL,
            {
                "topic_names": topic_names,
                "lock_ms": [60_000] * len(topic_names),
                "now": timezone.now(),
                "max_tasks": 10,
                "worker_id": "planner",
                "user_id": worker.pk,
            },
        )
        plan = cursor.fetchone()[0][0]["Plan"]
        transaction.set_rollback(True)  # EXPLAIN ANALYZE ran the update: nothing of it stays
    return plan


def test_a_burst_of_items_after_the_tables_were_emptied_is_fetched_by_index_probes(committed_setup):
    supervisor, worker = committed_setup
    start_instances(supervisor, EARLIER, prefix="OLD")
    with transaction.atomic(), maintenance_role(), connection.cursor() as cursor:
        for _ in range(VERSIONS):
            cursor.execute("UPDATE flowable.external_tasks SET updated_at = updated_at")
            cursor.execute("UPDATE flowable.process_instances SET updated_at = updated_at")
        cursor.execute(CLEANUP_SQL)
    with transaction.atomic(), connection.cursor() as cursor:
        analyze(cursor, "flowable.external_tasks", "flowable.process_instances")
        cursor.execute(
            "SELECT relname, reltuples, relpages FROM pg_class WHERE oid IN "
            "('flowable.external_tasks'::regclass, 'flowable.process_instances'::regclass)"
        )
        stale = cursor.fetchall()
    assert all(tuples == 0 and pages >= 40 for _, tuples, pages in stale), stale  # "empty", pages on disk
    workflows.definition_deploy(user=User.objects.get(username="supervisor"), bpmn_xml=RECORDS_CHECK_FILE.read_text())
    start_instances(supervisor, BURST)

    plan = fetch_plan(worker, [TOPIC, "another-topic"])

    everything = list(nodes(plan))
    item_scans = [n for n in everything if n.get("Relation Name") == "external_tasks" and "Scan" in n["Node Type"]]
    probe = [n for n in item_scans if n.get("Index Name") == "idx_external_tasks_fetch"]
    assert len(probe) == 1, [(n["Node Type"], n.get("Index Name")) for n in item_scans]
    assert "topic_name" in probe[0]["Index Cond"]
    # The probe stops once it has its rows: it reads about max_tasks items per topic, not the burst.
    assert probe[0]["Actual Rows"] * probe[0]["Actual Loops"] <= 10 + 2
    update_scan = [n for n in item_scans if n.get("Index Name") == "external_tasks_pkey"]
    assert update_scan and all("external_task_id" in n.get("Index Cond", "") for n in update_scan)
    instance_scans = [n for n in everything if n.get("Relation Name") == "process_instances"]
    assert instance_scans and all("process_instance_id" in n.get("Index Cond", "") for n in instance_scans)
    assert sum(n["Actual Rows"] * n["Actual Loops"] for n in instance_scans) <= 10 + 2
    # The only sorts are of the probed rows (at most max_tasks a topic), never of the topic's items.
    assert all(n["Actual Rows"] <= 20 for n in everything if n["Node Type"] == "Sort")
