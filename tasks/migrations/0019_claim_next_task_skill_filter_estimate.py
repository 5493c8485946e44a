"""flowable.claim_next_task states its skill filter so that the planner keeps the ordered index probe per queue.

The per-queue probe filtered on `required_skills::text[] <@ p_skills`. When no task of the table needs a skill
(the common case), ANALYZE keeps no element statistics for required_skills and the planner takes 0.5 % for that
condition: a queue of 250 OPEN tasks was expected to hold 2 that match. Expecting to read the whole queue to find
one, the planner read every OPEN task of the queue (bitmap scan) and sorted them instead of taking the first entry
of the queue's index range, so a claim read its whole queue (bench/RESULTS.md has the measurement).
Large queues (50,000 tasks) were expected to hold 250 matching
tasks and kept the index probe, so only queues of up to a few thousand tasks, the usual size, were hit.

The filter now reads `required_skills = '{}' OR required_skills <@ p_skills`: the same rows (an empty array is
contained in any), and the first arm is estimated from required_skills' most common values, where '{}' is as
common as tasks needing no skill are. A task needing no skill is also decided without comparing arrays.
"""
import importlib

from django.db import migrations

PREVIOUS = importlib.import_module("tasks.migrations.0018_claim_next_task_counts_in_one_statement")

OLD_FILTER = "AND t.required_skills::text[] <@ p_skills"
NEW_FILTER = "AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)"
assert PREVIOUS.CREATE.count(OLD_FILTER) == 1
CREATE = PREVIOUS.CREATE.replace(OLD_FILTER, NEW_FILTER)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0018_claim_next_task_counts_in_one_statement")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=PREVIOUS.CREATE)]
