-- flowable.claim_next_task: claim the best OPEN task of the given queues for a user, in one call.
--
-- The best OPEN task of each queue is found by one ordered probe of the queue's range of the partial index of
-- OPEN tasks (never a sort of the backlog), locked with SKIP LOCKED. The candidates are then tried best first:
-- each claim locks its queue's row and adds one to its load in one UPDATE, checking capacity on the locked row;
-- a queue another claim is writing is passed over (SKIP LOCKED) for the next best, and only when every
-- candidate's queue is busy does the claim wait, so it never answers "nothing" while a task is there. The claim,
-- the load and the history row are written together.
--
-- The skill filter reads `required_skills = '{}' OR ...` so the planner estimates it from the column's most
-- common values and keeps the per-queue index probe. The function runs with enable_seqscan off so its queue row
-- is always found through an index, not by scanning a table full of dead load versions. A new version must keep
-- the SET clause: CREATE OR REPLACE drops settings it does not name.
CREATE OR REPLACE FUNCTION flowable.claim_next_task(
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
