"""flowable.claim_next_task locks its queue row and counts the claim in one statement.

Before, a claim locked the chosen queue's row (PERFORM ... FOR NO KEY UPDATE SKIP LOCKED) and a second statement
(a CTE beside the task update) added one to its current_load: two statements, two index lookups of the queue row,
the row lock's own WAL record and page change before the update's. Now one UPDATE does both, its row locked by a
SKIP LOCKED subquery in the first pass (a busy queue is still passed over for the next best, as in 0016) and waited
for in the second. Same answers, same order, same capacity rule, one statement's work less per claim
(bench/RESULTS.md has the measurement).

The subquery returns the queue_id, not the row's ctid: the UPDATE then finds the row through the primary key
and, if another claim committed a newer version after this statement's snapshot, follows it to the version just
locked. A ctid would name that newer version, which the statement's snapshot cannot see: the UPDATE would find
nothing and pass over a queue with room.
"""
from django.db import migrations

CREATE = """CREATE OR REPLACE FUNCTION flowable.claim_next_task(
    p_user_id bigint, p_queues text[], p_skills text[], p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql AS $$
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
               AND t.required_skills::text[] <@ p_skills
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

# The version this migration replaces (migration 0016), frozen here: reversing restores it.
PREVIOUS = """
CREATE OR REPLACE FUNCTION flowable.claim_next_task(
    p_user_id bigint, p_queues text[], p_skills text[], p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql AS $$
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
               AND t.required_skills::text[] <@ p_skills
             ORDER BY t.priority DESC, t.created_at, t.task_id
             LIMIT 1
               FOR UPDATE OF t SKIP LOCKED
      ) c
      INTO v_task_ids, v_queue_names;
    IF v_task_ids IS NULL THEN
        RETURN;
    END IF;
    -- First pass: the first candidate whose queue row no other transaction holds. Second pass (every queue was
    -- busy): wait for each in turn. The load is checked on the locked row, so capacity holds under concurrency.
    LOOP
        FOR i IN 1 .. cardinality(v_task_ids) LOOP
            IF v_wait THEN
                PERFORM FROM queues.workflow_queues
                  WHERE queue_name = v_queue_names[i] AND current_load < max_capacity
                    FOR NO KEY UPDATE;
            ELSE
                PERFORM FROM queues.workflow_queues
                  WHERE queue_name = v_queue_names[i] AND current_load < max_capacity
                    FOR NO KEY UPDATE SKIP LOCKED;
            END IF;
            CONTINUE WHEN NOT FOUND;
            RETURN QUERY
            WITH claimed AS (
                UPDATE flowable.workflow_tasks t
                   SET status = 'CLAIMED', assignee_id = p_user_id, claimed_at = clock_timestamp(),
                       updated_at = clock_timestamp()
                 WHERE t.task_id = v_task_ids[i]
                RETURNING t.*
            ), load AS (
                UPDATE queues.workflow_queues q
                   SET current_load = q.current_load + 1
                  FROM claimed
                 WHERE q.queue_name = claimed.queue_name
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


class Migration(migrations.Migration):
    dependencies = [("tasks", "0017_history_via_account_partial_index")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=PREVIOUS)]
