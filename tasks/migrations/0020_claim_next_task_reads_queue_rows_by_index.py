"""flowable.claim_next_task finds its queue row through the queue table's indexes, never by scanning the table.

Every claim writes a new version of one queue row (its load), so between two VACUUMs the queue table's few pages
fill with dead versions of the load counters. The planner prices a scan of it from the page and row counts the
last VACUUM left (45 queues, 4 pages: a sequential scan looks cheaper than an index probe) and scanned the table
twice a claim, once to lock the row and once to update it, reading every live and dead version of every queue.
The function now runs with enable_seqscan off, so the row is locked and updated through workflow_queues'
queue_name and primary-key indexes; every other statement in it already probes an index. With a few hundred
queues the planner takes the indexes by itself and nothing changes (bench/RESULTS.md has the measurement).

Later versions of the function must keep the SET clause: CREATE OR REPLACE drops settings it does not name.
"""
import importlib

from django.db import migrations

PREVIOUS = importlib.import_module("tasks.migrations.0019_claim_next_task_skill_filter_estimate")

LANGUAGE = "LANGUAGE plpgsql AS $$"
assert PREVIOUS.CREATE.count(LANGUAGE) == 1
CREATE = PREVIOUS.CREATE.replace(LANGUAGE, "LANGUAGE plpgsql SET enable_seqscan = off AS $$")


class Migration(migrations.Migration):
    dependencies = [("tasks", "0019_claim_next_task_skill_filter_estimate")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=PREVIOUS.CREATE)]
