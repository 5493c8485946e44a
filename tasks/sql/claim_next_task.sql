-- flowable.claim_next_task: claim the best OPEN task of the given queues for a user, in one call.
--
-- The queues are ranked by their best OPEN task, found by one ordered probe of each queue's range of the partial
-- index of OPEN tasks (never a sort of the backlog) and read without locking it: a claim locks one task, not the
-- head of every queue. Then, best queue first, it locks the head it read, by key, if no other claim holds it and it
-- is still OPEN in that queue, or else the queue's best OPEN task no other claim holds (SKIP LOCKED both), and
-- locks the queue's row and adds one to its load in one UPDATE, checking capacity on the locked row. A queue another claim is writing is
-- passed over (SKIP LOCKED) for the next best, and only when every candidate's queue is busy does the claim wait,
-- for the queues whose task it holds, so it never answers "nothing" while a task is there. The claim, the load and
-- the history row are written together. The history row says why (flowable.claim_next_routing): the queues
-- considered, each one passed over and for what reason (its tasks held by other claims, its row busy, at
-- capacity, no task for the caller's skills), and the one chosen.
--
-- A task of a suspended process instance is passed over: its row carries the instance's state (`suspended`, set
-- and cleared by process_suspend / process_resume under the instance's and the task's locks), so each probe
-- filters it in the index walk it already makes, with no join, and the locking reads recheck it on the row's
-- latest version.
--
-- Order is by effective priority (the priority plus any aging boost, tasks/sla/aging.py), then age. A queue with an
-- express lane (express_threshold) has its tasks of at least that effective priority claimed first while its
-- express credit lasts: each claim adds the queue's express share (percent) to the credit, at most 100, and an
-- express claim spends 100, so express claims stay within the share of claims (plus one) while other tasks wait.
-- When the credit is short, the probes read the queue's index range below the threshold first (an index bound,
-- not a filter or a sort), and the express range only if that is empty. The credit is kept on the queue row the
-- claim locks and updates anyway, and checked on the locked row: a claim that lost the race for the last credit
-- takes the best task below the threshold instead.
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
    v_passed jsonb[] := '{}';  -- why each queue tried was passed over, by rank, for the history row
    v_load integer;
    v_capacity integer;
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
                IF v_task_id IS NULL THEN
                    v_passed[i] := jsonb_build_object('reason', 'tasks_held');
                    CONTINUE;
                END IF;
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
            IF NOT FOUND THEN
                -- At capacity, or its row is another claim's now (or was, and spent the express share this
                -- claim's task needed): its last committed load tells which.
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
