"""flowable.claim_next_task no longer queues behind other claims of the same queue.

Every claim adds one to its queue's current_load, so it holds that queue's row locked until it commits, and a
commit waits for the WAL flush. The previous version chose the best task across the queues and then waited for
that queue's row: with many concurrent claimers over a few queues, backends were seen waiting on a queue
row (pg_stat_activity: Lock/transactionid and Lock/tuple) instead of claiming another queue's task.
Now the best OPEN task of each queue is found as before (one ordered index probe per queue, SKIP
LOCKED), then the candidates are tried best first, each by locking its queue's row with SKIP LOCKED: a queue
another claim is writing is passed over for the next best queue instead of waited for. Only when every
candidate's queue is busy does a claim wait, best candidate first, so it never reports "nothing to claim" while
a task is there. The capacity check is made on the locked row, so concurrent claims never push a queue past its
max_capacity (the previous version read the load without a lock), and the candidate query no longer reads the
queue table at all (on a busy system its few pages fill with row versions of the load counter, which every
scan of the table reads).

Claims made one after another still come in priority-then-age order; between claims running at the same moment
the order was already loose (SKIP LOCKED passes over a task another claim holds), and is now loose across queues
too: a claim may take the best task of another queue while the best task overall is being claimed by someone
else's claim of the same queue.
"""
from django.db import migrations

CREATE = """
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

# The version this migration replaces (migration 0012), frozen here: reversing restores it.
PREVIOUS = """
CREATE OR REPLACE FUNCTION flowable.claim_next_task(
    p_user_id bigint, p_queues text[], p_skills text[], p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH next AS (
        SELECT c.task_id
          FROM unnest(p_queues) AS q(queue_name)
          JOIN queues.workflow_queues wq ON wq.queue_name = q.queue_name AND wq.current_load < wq.max_capacity
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
         ORDER BY c.priority DESC, c.created_at, c.task_id
         LIMIT 1
    ), claimed AS (
        UPDATE flowable.workflow_tasks t
           SET status = 'CLAIMED', assignee_id = p_user_id, claimed_at = clock_timestamp(), updated_at = clock_timestamp()
          FROM next
         WHERE t.task_id = next.task_id
        RETURNING t.*
    ), load AS (
        UPDATE queues.workflow_queues q
           SET current_load = q.current_load + 1
          FROM claimed
         WHERE q.queue_name = claimed.queue_name
    ), history AS (
        INSERT INTO flowable.task_history (task_id, event_type, actor_id, via_account_id, old_values, new_values, comment, created_at)
        SELECT claimed.task_id, 'CLAIMED', p_user_id, p_via_account_id,
               jsonb_build_object('status', 'OPEN', 'assignee', NULL),
               jsonb_build_object('status', 'CLAIMED', 'assignee', (SELECT username FROM entitlements.users WHERE id = p_user_id)),
               '', clock_timestamp()
          FROM claimed
    )
    SELECT * FROM claimed;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("tasks", "0015_claim_next_for_user_cached_access")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=PREVIOUS)]
