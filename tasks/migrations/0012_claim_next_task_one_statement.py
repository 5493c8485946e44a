"""flowable.claim_next_task as one statement: pick, claim, load and history in a single data-modifying CTE.

The first version chose the task in one statement and wrote it in a second; one statement spares an executor
start-up and a plan per claim. Behaviour is unchanged: the same probe per queue with SKIP LOCKED, queues at
capacity and tasks needing skills the user lacks passed over, the claim, the queue's load and the history row
written together.
"""
from django.db import migrations

CREATE = """
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

# The version this migration replaces (migration 0003), frozen here: reversing restores it.
PREVIOUS = """
CREATE OR REPLACE FUNCTION flowable.claim_next_task(
    p_user_id bigint, p_queues text[], p_skills text[], p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql AS $$
DECLARE
    v_task_id bigint;
BEGIN
    SELECT c.task_id INTO v_task_id
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
     LIMIT 1;
    IF v_task_id IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH claimed AS (
        UPDATE flowable.workflow_tasks
           SET status = 'CLAIMED', assignee_id = p_user_id, claimed_at = clock_timestamp(), updated_at = clock_timestamp()
         WHERE task_id = v_task_id
        RETURNING *
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
    dependencies = [("tasks", "0011_queue_active_index")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=PREVIOUS)]
