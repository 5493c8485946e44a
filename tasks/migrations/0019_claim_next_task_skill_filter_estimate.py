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

# The version this migration replaces (migration 0018), frozen here: reversing restores it.
PREVIOUS = """CREATE OR REPLACE FUNCTION flowable.claim_next_task(
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


class Migration(migrations.Migration):
    dependencies = [("tasks", "0018_claim_next_task_counts_in_one_statement")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=PREVIOUS)]
