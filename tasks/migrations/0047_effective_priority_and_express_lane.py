"""Claim-next orders by effective priority, an indexed column aging raises; queues may run an express lane.

A queue may age its open tasks (queues.aging_enabled, weighted by its priority_weight): the SLA-risk job adds
points for the business hours a task has waited and for its breach probability (tasks/sla/aging.py) to
`priority_boost`. `effective_priority` = priority + priority_boost is a stored generated column: PostgreSQL keeps
it whenever either changes (a new task, an escalation, the job), so no code path has to, and no claim computes it.

The partial index of OPEN tasks that claim-next probes (idx_workflow_tasks_claim_open) now has effective_priority
in the place of priority. Replaced, not added beside it: every non-HOT write of a task (each claim) writes an entry
in every index whose predicate it meets, and nothing else reads the old order. It is built CONCURRENTLY under a
temporary name, the old one dropped CONCURRENTLY, then renamed (as in 0028), so the migration is not atomic.

Adding a stored generated column rewrites the task table under an exclusive lock: on a large live table, run this
migration in a quiet window. The archive gets both columns as plain ones (tasks/sla/archive.py copies every live
column).

flowable.claim_next_task orders by effective_priority and keeps the queue's express lane (queues 0004): its text
says how the credit works. The function is replaced with a frozen copy of tasks/sql/claim_next_task.sql.
"""
import django.db.models.expressions
from django.conf import settings
from django.db import migrations, models

CREATE = """CREATE OR REPLACE FUNCTION flowable.claim_next_task(
    p_user_id bigint, p_queues text[], p_skills text[], p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    v_queue_names text[];
    v_heads bigint[];
    v_thresholds integer[];
    v_bounds integer[];
    v_task_ids bigint[] := '{}';
    v_effectives integer[] := '{}';
    v_task_id bigint;
    v_effective integer;
    v_forced boolean;
    v_wait boolean := false;
BEGIN
    -- The queues that have an OPEN task the user may take, best head first, and their heads. Nothing is locked.
    -- A queue whose express credit is short at this moment offers its best task below the express threshold
    -- (bound; 2147483647, the largest integer, when there is none), or, having none, its best. The bound is read
    -- in its own subquery (OFFSET 0) so that the probes compare with a plain value: an expression over the queue
    -- row's columns would not be leakproof, and row-level security would then keep it out of the index condition.
    SELECT array_agg(q.queue_name ORDER BY c.effective_priority DESC, c.created_at, c.task_id),
           array_agg(c.task_id ORDER BY c.effective_priority DESC, c.created_at, c.task_id),
           array_agg(l.express_threshold ORDER BY c.effective_priority DESC, c.created_at, c.task_id),
           array_agg(l.bound ORDER BY c.effective_priority DESC, c.created_at, c.task_id)
      FROM unnest(p_queues) AS q(queue_name)
      CROSS JOIN LATERAL (
            SELECT w.express_threshold,
                   CASE WHEN w.express_credit + w.express_share_percent < 100
                        THEN w.express_threshold ELSE 2147483647 END AS bound
              FROM queues.workflow_queues w
             WHERE w.queue_name = q.queue_name
            OFFSET 0
      ) l
      CROSS JOIN LATERAL (
            (SELECT t.task_id, t.effective_priority, t.created_at
               FROM flowable.workflow_tasks t
              WHERE t.queue_name = q.queue_name
                AND t.effective_priority < l.bound
                AND t.status = 'OPEN' AND NOT t.suspended
                AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
              ORDER BY t.effective_priority DESC, t.created_at, t.task_id
              LIMIT 1)
            UNION ALL
            (SELECT t.task_id, t.effective_priority, t.created_at
               FROM flowable.workflow_tasks t
              WHERE l.bound < 2147483647
                AND t.queue_name = q.queue_name
                AND t.status = 'OPEN' AND NOT t.suspended
                AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
              ORDER BY t.effective_priority DESC, t.created_at, t.task_id
              LIMIT 1)
            LIMIT 1
      ) c
      INTO v_queue_names, v_heads, v_thresholds, v_bounds;
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
                v_effective := v_effectives[i];
                CONTINUE WHEN v_task_id IS NULL;
            ELSE
                -- The lock rechecks the row's latest version: a head claimed, escalated or moved meanwhile is not
                -- taken.
                SELECT t.task_id, t.effective_priority
                  INTO v_task_id, v_effective
                  FROM flowable.workflow_tasks t
                 WHERE t.task_id = v_heads[i]
                   AND t.queue_name = v_queue_names[i]
                   AND t.status = 'OPEN' AND NOT t.suspended
                   AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
                   FOR UPDATE OF t SKIP LOCKED;
                IF v_task_id IS NULL THEN
                    SELECT t.task_id, t.effective_priority
                      INTO v_task_id, v_effective
                      FROM flowable.workflow_tasks t
                     WHERE t.queue_name = v_queue_names[i]
                       AND t.effective_priority < v_bounds[i]
                       AND t.status = 'OPEN' AND NOT t.suspended
                       AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
                     ORDER BY t.effective_priority DESC, t.created_at, t.task_id
                     LIMIT 1
                       FOR UPDATE OF t SKIP LOCKED;
                END IF;
                IF v_task_id IS NULL AND v_bounds[i] < 2147483647 THEN
                    SELECT t.task_id, t.effective_priority
                      INTO v_task_id, v_effective
                      FROM flowable.workflow_tasks t
                     WHERE t.queue_name = v_queue_names[i]
                       AND t.status = 'OPEN' AND NOT t.suspended
                       AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
                     ORDER BY t.effective_priority DESC, t.created_at, t.task_id
                     LIMIT 1
                       FOR UPDATE OF t SKIP LOCKED;
                END IF;
                v_task_ids[i] := v_task_id;
                v_effectives[i] := v_effective;
                CONTINUE WHEN v_task_id IS NULL;
            END IF;
            -- An express task taken while the credit was short had nothing below the threshold to yield to.
            v_forced := v_effective >= v_bounds[i];
            LOOP
                -- The queue's row is locked and its load and express credit counted in one statement, which checks
                -- the capacity and the credit on the locked row.
                IF v_wait THEN
                    UPDATE queues.workflow_queues q
                       SET current_load = q.current_load + 1,
                           express_credit = CASE WHEN v_effective >= q.express_threshold
                                                 THEN greatest(q.express_credit + q.express_share_percent - 100, 0)
                                                 ELSE least(q.express_credit + q.express_share_percent, 100) END
                     WHERE q.queue_name = v_queue_names[i] AND q.current_load < q.max_capacity
                       AND (v_effective < q.express_threshold IS NOT FALSE OR v_forced
                            OR q.express_credit + q.express_share_percent >= 100);
                ELSE
                    UPDATE queues.workflow_queues q
                       SET current_load = q.current_load + 1,
                           express_credit = CASE WHEN v_effective >= q.express_threshold
                                                 THEN greatest(q.express_credit + q.express_share_percent - 100, 0)
                                                 ELSE least(q.express_credit + q.express_share_percent, 100) END
                     WHERE q.queue_id = (SELECT b.queue_id FROM queues.workflow_queues b
                                          WHERE b.queue_name = v_queue_names[i] AND b.current_load < b.max_capacity
                                            FOR NO KEY UPDATE SKIP LOCKED)
                       AND (v_effective < q.express_threshold IS NOT FALSE OR v_forced
                            OR q.express_credit + q.express_share_percent >= 100);
                END IF;
                EXIT WHEN FOUND OR NOT v_wait OR v_forced OR v_effective < v_thresholds[i] IS NOT FALSE;
                -- Waiting, with an express task, for a row whose credit another claim spent meanwhile: take the
                -- best task below the threshold instead (the express one stays locked until this claim ends), or,
                -- with none, the express one after all.
                SELECT t.task_id, t.effective_priority
                  INTO v_task_id, v_effective
                  FROM flowable.workflow_tasks t
                 WHERE t.queue_name = v_queue_names[i]
                   AND t.effective_priority < v_thresholds[i]
                   AND t.status = 'OPEN' AND NOT t.suspended
                   AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
                 ORDER BY t.effective_priority DESC, t.created_at, t.task_id
                 LIMIT 1
                   FOR UPDATE OF t SKIP LOCKED;
                IF v_task_id IS NULL THEN
                    v_task_id := v_task_ids[i];
                    v_effective := v_effectives[i];
                    v_forced := true;
                END IF;
            END LOOP;
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

# The version this migration replaces (migration 0039), frozen here: reversing restores it.
PREVIOUS = """CREATE OR REPLACE FUNCTION flowable.claim_next_task(
    p_user_id bigint, p_queues text[], p_skills text[], p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    v_queue_names text[];
    v_heads bigint[];
    v_task_ids bigint[] := '{}';
    v_task_id bigint;
    v_wait boolean := false;
    v_passed jsonb[] := '{}';  -- why each queue tried was passed over, by rank, for the history row
    v_load integer;
    v_capacity integer;
BEGIN
    -- The queues that have an OPEN task the user may take, best head first, and their heads. Nothing is locked.
    SELECT array_agg(q.queue_name ORDER BY c.priority DESC, c.created_at, c.task_id),
           array_agg(c.task_id ORDER BY c.priority DESC, c.created_at, c.task_id)
      FROM unnest(p_queues) AS q(queue_name)
      CROSS JOIN LATERAL (
            SELECT t.task_id, t.priority, t.created_at
              FROM flowable.workflow_tasks t
             WHERE t.queue_name = q.queue_name
               AND t.status = 'OPEN' AND NOT t.suspended
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
                   AND t.status = 'OPEN' AND NOT t.suspended
                   AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
                   FOR UPDATE OF t SKIP LOCKED;
                IF v_task_id IS NULL THEN
                    SELECT t.task_id
                      INTO v_task_id
                      FROM flowable.workflow_tasks t
                     WHERE t.queue_name = v_queue_names[i]
                       AND t.status = 'OPEN' AND NOT t.suspended
                       AND (t.required_skills = '{}' OR t.required_skills::text[] <@ p_skills)
                     ORDER BY t.priority DESC, t.created_at, t.task_id
                     LIMIT 1
                       FOR UPDATE OF t SKIP LOCKED;
                END IF;
                v_task_ids[i] := v_task_id;
                IF v_task_id IS NULL THEN
                    v_passed[i] := jsonb_build_object('reason', 'tasks_held');
                    CONTINUE;
                END IF;
                UPDATE queues.workflow_queues q
                   SET current_load = q.current_load + 1
                 WHERE q.queue_id = (SELECT b.queue_id FROM queues.workflow_queues b
                                      WHERE b.queue_name = v_queue_names[i] AND b.current_load < b.max_capacity
                                        FOR NO KEY UPDATE SKIP LOCKED);
            END IF;
            IF NOT FOUND THEN
                -- At capacity, or its row is another claim's now: its last committed load tells which.
                SELECT b.current_load, b.max_capacity INTO v_load, v_capacity
                  FROM queues.workflow_queues b WHERE b.queue_name = v_queue_names[i];
                v_passed[i] := jsonb_build_object('reason', CASE WHEN v_load >= v_capacity THEN 'at_capacity'
                                                                 ELSE 'queue_busy' END,
                                                  'load', v_load, 'capacity', v_capacity);
                CONTINUE;
            END IF;
            RETURN QUERY
            WITH claimed AS (
                UPDATE flowable.workflow_tasks t
                   SET status = 'CLAIMED', assignee_id = p_user_id, claimed_at = clock_timestamp(),
                       updated_at = clock_timestamp()
                 WHERE t.task_id = v_task_id
                RETURNING t.*
            ), history AS (
                INSERT INTO flowable.task_history (task_id, event_type, actor_id, via_account_id, old_values,
                                                   new_values, comment, created_at, routing)
                SELECT claimed.task_id, 'CLAIMED', p_user_id, p_via_account_id,
                       jsonb_build_object('status', 'OPEN', 'assignee', NULL),
                       jsonb_build_object('status', 'CLAIMED',
                                          'assignee', (SELECT username FROM entitlements.users WHERE id = p_user_id)),
                       '', clock_timestamp(),
                       flowable.claim_next_routing(p_queues, p_skills, v_queue_names, v_heads, v_passed, i,
                                                   claimed.task_id, v_wait)
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

ARCHIVE_FORWARD = (
    "ALTER TABLE flowable.workflow_tasks_archive ADD COLUMN priority_boost integer NOT NULL DEFAULT 0, "
    "ADD COLUMN effective_priority integer"
)
ARCHIVE_BACKWARD = (
    "ALTER TABLE flowable.workflow_tasks_archive DROP COLUMN priority_boost, DROP COLUMN effective_priority"
)

INDEXES_FORWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_claim_open_effective ON flowable.workflow_tasks"
    " (queue_name, effective_priority DESC, created_at, task_id) WHERE status = 'OPEN'",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_claim_open",
    "ALTER INDEX flowable.idx_workflow_tasks_claim_open_effective RENAME TO idx_workflow_tasks_claim_open",
]
INDEXES_BACKWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_workflow_tasks_claim_open_priority ON flowable.workflow_tasks"
    " (queue_name, priority DESC, created_at, task_id) WHERE status = 'OPEN'",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.idx_workflow_tasks_claim_open",
    "ALTER INDEX flowable.idx_workflow_tasks_claim_open_priority RENAME TO idx_workflow_tasks_claim_open",
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("queues", "0004_express_lane_and_aging"),
        ("tasks", "0046_whatif_runs"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='workflowtask',
            name='priority_boost',
            field=models.IntegerField(db_default=0, default=0, editable=False, help_text='Points aging adds to the priority while the task waits.'),
        ),
        migrations.AddConstraint(
            model_name='workflowtask',
            constraint=models.CheckConstraint(condition=models.Q(('priority_boost__gte', 0)), name='task_priority_boost_non_negative'),
        ),
        migrations.AddField(
            model_name='workflowtask',
            name='effective_priority',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.expressions.CombinedExpression(models.F('priority'), '+', models.F('priority_boost')), output_field=models.IntegerField()),
        ),
        migrations.RunSQL(ARCHIVE_FORWARD, reverse_sql=ARCHIVE_BACKWARD),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name='workflowtask', name='idx_workflow_tasks_claim_open'),
                migrations.AddIndex(
                    model_name='workflowtask',
                    index=models.Index(models.F('queue'), models.OrderBy(models.F('effective_priority'), descending=True), models.F('created_at'), models.F('task_id'), condition=models.Q(('status', 'OPEN')), name='idx_workflow_tasks_claim_open'),
                ),
            ],
            database_operations=[migrations.RunSQL(INDEXES_FORWARD, reverse_sql=INDEXES_BACKWARD)],
        ),
        migrations.RunSQL(CREATE, reverse_sql=PREVIOUS),
    ]
