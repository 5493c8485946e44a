"""Tasks carry their process instance's suspension; claim-next passes over suspended tasks; two history events.

A suspended instance's tasks may be neither claimed nor completed. Claim-next finds its task in one statement
(flowable.claim_next_task), by one ordered probe of the partial index of OPEN tasks per queue; a join to the
process instance in each probe, or a subquery per candidate, would put a second table into every claim. The
instance's state is kept on the task row instead (`suspended`, set and cleared by process_suspend and
process_resume under the instance's and the tasks' locks), and each probe filters on it as it does on the skills:
suspended tasks are few, so a probe reads past a handful at most, and the locking reads recheck the flag on the
row's latest version, so a claim racing a suspension either takes the task first or finds it suspended.

The column is added with a constant default (no table rewrite), and to the task archive, whose columns must match
the live table's (tasks/sla/archive.py). task_history's event types gain SUSPENDED and RESUMED.
"""
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

# The version this migration replaces (migration 0028), frozen here: reversing restores it.
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

ARCHIVE_FORWARD = "ALTER TABLE flowable.workflow_tasks_archive ADD COLUMN suspended boolean NOT NULL DEFAULT false"
ARCHIVE_BACKWARD = "ALTER TABLE flowable.workflow_tasks_archive DROP COLUMN suspended"


class Migration(migrations.Migration):

    dependencies = [
        ("tasks", "0038_notifications"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='taskhistory',
            name='task_event_type_valid',
        ),
        migrations.AddField(
            model_name='workflowtask',
            name='suspended',
            field=models.BooleanField(db_default=False, default=False, help_text='Its process instance is suspended: no claim, no completion.'),
        ),
        migrations.AlterField(
            model_name='taskhistory',
            name='event_type',
            field=models.CharField(choices=[('CREATED', 'Created'), ('CLAIMED', 'Claimed'), ('RELEASED', 'Released'), ('COMPLETED', 'Completed'), ('REASSIGNED', 'Reassigned'), ('DELEGATED', 'Delegated'), ('RESOLVED', 'Resolved'), ('ESCALATED', 'Escalated'), ('MOVED', 'Moved'), ('PRIORITY_CHANGED', 'Priority Changed'), ('CANCELLED', 'Cancelled'), ('COMMENTED', 'Commented'), ('SUSPENDED', 'Suspended'), ('RESUMED', 'Resumed')], max_length=30),
        ),
        migrations.AddConstraint(
            model_name='taskhistory',
            constraint=models.CheckConstraint(condition=models.Q(('event_type__in', ['CREATED', 'CLAIMED', 'RELEASED', 'COMPLETED', 'REASSIGNED', 'DELEGATED', 'RESOLVED', 'ESCALATED', 'MOVED', 'PRIORITY_CHANGED', 'CANCELLED', 'COMMENTED', 'SUSPENDED', 'RESUMED'])), name='task_event_type_valid'),
        ),
        migrations.RunSQL(ARCHIVE_FORWARD, reverse_sql=ARCHIVE_BACKWARD),
        migrations.RunSQL(CREATE, reverse_sql=PREVIOUS),
    ]
