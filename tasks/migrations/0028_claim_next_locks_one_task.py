"""Claim-next locks one task, not the head of every queue; a claim writes only the task indexes that earn it.

flowable.claim_next_task read the best OPEN task of each of the claimant's queues with FOR UPDATE SKIP LOCKED and
so locked the head of every queue (twenty with twenty queues: twenty row locks, each a WAL record carrying a full
page image after a checkpoint) before claiming one. It now reads the heads without locking them, ranks the queues
by them and, best queue first, locks the head it read, by key, or, when another claim holds or has taken it, the
queue's best OPEN task no other claim holds (SKIP LOCKED both), then its queue row as before. A claim that finds
its queue busy goes on to the next queue; only then does it hold a second task. The waiting pass, the capacity check and the
history row are unchanged.

Every claim writes a new version of its task row (the status is indexed, so never a HOT update) and with it an entry
in every index whose predicate the claimed row meets. Two of them earned nothing from it:

- idx_workflow_tasks_candidate_groups, the seed's GIN index for candidate-group search, whose pending list every
  new task version was appended to: it now holds OPEN tasks only, the ones there are to find (no query today
  filters on candidate_groups; a task's queue decides who sees it);
- workflow_tasks_owner_id_da866555, the owner foreign key's full index, mostly NULLs: every lookup by owner names
  one, so idx_workflow_tasks_owner holds the delegated tasks only.

The task table is given fillfactor 90, so the new version a claim or a completion writes fits on its row's page
(new pages; existing pages keep what they hold until rewritten): one heap page touched instead of two, and no
extra lock record for moving the row to another page.

Django's schema editor cannot find or drop indexes of a schema-qualified table by name, so the database side is
written out, the state is Django's (as in 0017). The indexes are built and dropped CONCURRENTLY, so the migration
is not atomic: a plain CREATE INDEX on the task table would block every claim for the length of the build. Each
partial index exists before the full one it replaces is dropped; the candidate-group index is then renamed to
the seed's name.
"""
import django.contrib.postgres.indexes
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

CREATE = """CREATE OR REPLACE FUNCTION flowable.claim_next_task(
    p_user_id bigint, p_queues text[], p_skills text[], p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    v_queue_names text[];
    v_heads bigint[];
    v_task_ids bigint[] := '{}';
    v_task_id bigint;
    v_wait boolean := false;
BEGIN
    -- The queues that have an OPEN task the user may take, best head first, and their heads. Nothing is locked.
    SELECT array_agg(q.queue_name ORDER BY c.priority DESC, c.created_at, c.task_id),
           array_agg(c.task_id ORDER BY c.priority DESC, c.created_at, c.task_id)
      FROM unnest(p_queues) AS q(queue_name)
      CROSS JOIN LATERAL (
            SELECT t.task_id, t.priority, t.created_at
              FROM flowable.workflow_tasks t
             WHERE t.queue_name = q.queue_name
               AND t.status = 'OPEN'
               AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
             ORDER BY t.priority DESC, t.created_at, t.task_id
             LIMIT 1
      ) c
      INTO v_queue_names, v_heads;
    IF v_queue_names IS NULL THEN
        RETURN;
    END IF;
    -- First pass: in each queue, best first, lock its head or, when another claim holds the head or has taken it,
    -- its best OPEN task that no other claim holds; then try the queue's row. The first queue whose row no other
    -- transaction holds gets the claim. Second pass (every queue was busy): wait for each queue whose task this
    -- claim holds, in turn. The load is checked on the locked row, so capacity holds under concurrency; the row is
    -- locked and its load counted in one statement.
    LOOP
        FOR i IN 1 .. cardinality(v_queue_names) LOOP
            IF v_wait THEN
                v_task_id := v_task_ids[i];
                CONTINUE WHEN v_task_id IS NULL;
                UPDATE queues.workflow_queues q
                   SET current_load = q.current_load + 1
                 WHERE q.queue_name = v_queue_names[i] AND q.current_load < q.max_capacity;
            ELSE
                -- The lock rechecks the row's latest version: a head claimed, escalated or moved meanwhile is not
                -- taken.
                SELECT t.task_id
                  INTO v_task_id
                  FROM flowable.workflow_tasks t
                 WHERE t.task_id = v_heads[i]
                   AND t.queue_name = v_queue_names[i]
                   AND t.status = 'OPEN'
                   AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
                   FOR UPDATE OF t SKIP LOCKED;
                IF v_task_id IS NULL THEN
                    SELECT t.task_id
                      INTO v_task_id
                      FROM flowable.workflow_tasks t
                     WHERE t.queue_name = v_queue_names[i]
                       AND t.status = 'OPEN'
                       AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
                     ORDER BY t.priority DESC, t.created_at, t.task_id
                     LIMIT 1
                       FOR UPDATE OF t SKIP LOCKED;
                END IF;
                v_task_ids[i] := v_task_id;
                CONTINUE WHEN v_task_id IS NULL;
                UPDATE queues.workflow_queues q
                   SET current_load = q.current_load + 1
                 WHERE q.queue_id = (SELECT b.queue_id FROM queues.workflow_queues b
                                      WHERE b.queue_name = v_queue_names[i] AND b.current_load < b.max_capacity
                                        FOR NO KEY UPDATE SKIP LOCKED);
            END IF;
            CONTINUE WHEN NOT FOUND;
            RETURN QUERY
            WITH claimed AS (
                UPDATE flowable.workflow_tasks t
                   SET status = 'CLAIMED', assignee_id = p_user_id, claimed_at = clock_timestamp(),
                       updated_at = clock_timestamp()
                 WHERE t.task_id = v_task_id
                RETURNING t.*
            ), history AS (
                INSERT INTO flowable.task_history (task_id, event_type, actor_id, via_account_id, old_values,
                                                   new_values, comment, created_at)
                SELECT claimed.task_id, 'CLAIMED', p_user_id, p_via_account_id,
                       jsonb_build_object('status', 'OPEN', 'assignee', NULL),
                       jsonb_build_object('status', 'CLAIMED',
                                          'assignee', (SELECT username FROM entitlements.users WHERE id = p_user_id)),
                       '', clock_timestamp()
                  FROM claimed
            )
            SELECT * FROM claimed;
            RETURN;
        END LOOP;
        EXIT WHEN v_wait;
        v_wait := true;
    END LOOP;
END
$$;
"""

# The version this migration replaces (migration 0020), frozen here: reversing restores it.
PREVIOUS = """CREATE OR REPLACE FUNCTION flowable.claim_next_task(
    p_user_id bigint, p_queues text[], p_skills text[], p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    v_task_ids bigint[];
    v_queue_names text[];
    v_wait boolean := false;
BEGIN
    -- The best OPEN task of each queue, best first; the tasks are locked, others' locked ones skipped. Capacity
    -- is checked below, on the locked queue row.
    SELECT array_agg(c.task_id ORDER BY c.priority DESC, c.created_at, c.task_id),
           array_agg(q.queue_name ORDER BY c.priority DESC, c.created_at, c.task_id)
      FROM unnest(p_queues) AS q(queue_name)
      CROSS JOIN LATERAL (
            SELECT t.task_id, t.priority, t.created_at
              FROM flowable.workflow_tasks t
             WHERE t.queue_name = q.queue_name
               AND t.status = 'OPEN'
               AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
             ORDER BY t.priority DESC, t.created_at, t.task_id
             LIMIT 1
               FOR UPDATE OF t SKIP LOCKED
      ) c
      INTO v_task_ids, v_queue_names;
    IF v_task_ids IS NULL THEN
        RETURN;
    END IF;
    -- First pass: the first candidate whose queue row no other transaction holds. Second pass (every queue was
    -- busy): wait for each in turn. The load is checked on the locked row, so capacity holds under concurrency;
    -- the row is locked and its load counted in one statement.
    LOOP
        FOR i IN 1 .. cardinality(v_task_ids) LOOP
            IF v_wait THEN
                UPDATE queues.workflow_queues q
                   SET current_load = q.current_load + 1
                 WHERE q.queue_name = v_queue_names[i] AND q.current_load < q.max_capacity;
            ELSE
                UPDATE queues.workflow_queues q
                   SET current_load = q.current_load + 1
                 WHERE q.queue_id = (SELECT b.queue_id FROM queues.workflow_queues b
                                      WHERE b.queue_name = v_queue_names[i] AND b.current_load < b.max_capacity
                                        FOR NO KEY UPDATE SKIP LOCKED);
            END IF;
            CONTINUE WHEN NOT FOUND;
            RETURN QUERY
            WITH claimed AS (
                UPDATE flowable.workflow_tasks t
                   SET status = 'CLAIMED', assignee_id = p_user_id, claimed_at = clock_timestamp(),
                       updated_at = clock_timestamp()
                 WHERE t.task_id = v_task_ids[i]
                RETURNING t.*
            ), history AS (
                INSERT INTO flowable.task_history (task_id, event_type, actor_id, via_account_id, old_values,
                                                   new_values, comment, created_at)
                SELECT claimed.task_id, 'CLAIMED', p_user_id, p_via_account_id,
                       jsonb_build_object('status', 'OPEN', 'assignee', NULL),
                       jsonb_build_object('status', 'CLAIMED',
                                          'assignee', (SELECT username FROM entitlements.users WHERE id = p_user_id)),
                       '', clock_timestamp()
                  FROM claimed
            )
            SELECT * FROM claimed;
            RETURN;
        END LOOP;
        EXIT WHEN v_wait;
        v_wait := true;
    END LOOP;
END
$$;
"""

INDEXES_FORWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_owner ON flowable.workflow_tasks (owner_id)"
    " WHERE owner_id IS NOT NULL",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.workflow_tasks_owner_id_da866555",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_candidate_groups_open ON flowable.workflow_tasks"
    " USING gin (candidate_groups) WHERE status = 'OPEN'",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_candidate_groups",
    "ALTER INDEX flowable.idx_workflow_tasks_candidate_groups_open RENAME TO idx_workflow_tasks_candidate_groups",
]
INDEXES_BACKWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_candidate_groups_all ON flowable.workflow_tasks"
    " USING gin (candidate_groups)",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_candidate_groups",
    "ALTER INDEX flowable.idx_workflow_tasks_candidate_groups_all RENAME TO idx_workflow_tasks_candidate_groups",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS workflow_tasks_owner_id_da866555 ON flowable.workflow_tasks (owner_id)",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_owner",
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tasks", "0027_tasks_by_queue_and_instance"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(CREATE, reverse_sql=PREVIOUS),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="workflowtask", name="idx_workflow_tasks_candidate_groups"),
                migrations.AddIndex(
                    model_name="workflowtask",
                    index=django.contrib.postgres.indexes.GinIndex(condition=models.Q(("status", "OPEN")), fields=["candidate_groups"], name="idx_workflow_tasks_candidate_groups"),
                ),
                migrations.AlterField(
                    model_name="workflowtask",
                    name="owner",
                    field=models.ForeignKey(blank=True, db_index=False, help_text="Who delegated the task; it returns to them when the delegate resolves it.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name="delegated_tasks", to=settings.AUTH_USER_MODEL),
                ),
                migrations.AddIndex(
                    model_name="workflowtask",
                    index=models.Index(condition=models.Q(("owner__isnull", False)), fields=["owner"], name="idx_workflow_tasks_owner"),
                ),
            ],
            database_operations=[migrations.RunSQL(INDEXES_FORWARD, reverse_sql=INDEXES_BACKWARD)],
        ),
        migrations.RunSQL(
            "ALTER TABLE flowable.workflow_tasks SET (fillfactor = 90)",
            reverse_sql="ALTER TABLE flowable.workflow_tasks RESET (fillfactor)",
        ),
    ]
