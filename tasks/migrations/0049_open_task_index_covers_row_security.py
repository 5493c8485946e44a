"""The index of OPEN tasks covers row-level security; the unused candidate-group index is dropped.

The queue page (/inbox/queues/) counts a caller's open tasks up to 2,000 by one ordered probe per queue of
idx_workflow_tasks_claim_open. Under row-level security every probed row is checked against the policies, which
read process_instance_id; the index did not hold it, so each row was fetched from the heap, and the planner
preferred a bitmap scan: every open task of the queue (12,500 at 1M tasks) read and sorted, AND-ed with a full
scan of idx_workflow_tasks_candidate_groups (its only use: its predicate, status = 'OPEN'; 325,000 entries at 1M
tasks). Once the index includes process_instance_id the probe is an index-only scan that stops at the cap
(figures in bench/RESULTS.md, bench/pages.py).

idx_workflow_tasks_candidate_groups is the seed's GIN index for candidate-group search. No query filters on
candidate_groups (a task's queue decides who sees it); the index earned nothing but a write for every new or
reopened task and the bitmap plan above. Dropped.

Built and dropped CONCURRENTLY, as in 0028 and 0047 (a plain CREATE INDEX would block every claim for the length
of the build): the new claim index exists before the old one is dropped, then takes its name.
"""

from django.db import migrations, models

INDEXES_FORWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_claim_open_covering ON flowable.workflow_tasks"
    " (queue_name, effective_priority DESC, created_at, task_id) INCLUDE (process_instance_id)"
    " WHERE status = 'OPEN'",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_claim_open",
    "ALTER INDEX flowable.idx_workflow_tasks_claim_open_covering RENAME TO idx_workflow_tasks_claim_open",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_candidate_groups",
]
INDEXES_BACKWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_candidate_groups ON flowable.workflow_tasks"
    " USING gin (candidate_groups) WHERE status = 'OPEN'",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_claim_open_keys ON flowable.workflow_tasks"
    " (queue_name, effective_priority DESC, created_at, task_id) WHERE status = 'OPEN'",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_claim_open",
    "ALTER INDEX flowable.idx_workflow_tasks_claim_open_keys RENAME TO idx_workflow_tasks_claim_open",
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tasks", "0048_claim_next_express_and_routing"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="workflowtask", name="idx_workflow_tasks_candidate_groups"),
                migrations.RemoveIndex(model_name="workflowtask", name="idx_workflow_tasks_claim_open"),
                migrations.AddIndex(
                    model_name="workflowtask",
                    index=models.Index(
                        models.F("queue"),
                        models.OrderBy(models.F("effective_priority"), descending=True),
                        models.F("created_at"),
                        models.F("task_id"),
                        condition=models.Q(("status", "OPEN")),
                        include=("process_instance",),
                        name="idx_workflow_tasks_claim_open",
                    ),
                ),
            ],
            database_operations=[migrations.RunSQL(INDEXES_FORWARD, reverse_sql=INDEXES_BACKWARD)],
        ),
    ]
