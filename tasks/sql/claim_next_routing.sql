-- flowable.claim_next_routing: why claim-next took the task it took, for the CLAIMED event of the task's history.
--
-- flowable.claim_next_task calls it once per claim, in the statement that writes the claim, with what the claim
-- found: the caller's queues (p_queues) and skills, the queues that had an OPEN task the caller may take ranked by
-- their best one (p_ranked, p_heads), why each queue tried before the chosen rank was passed over (p_passed:
-- tasks_held, queue_busy, at_capacity, with the load then), and whether the claim had to wait. It adds the head
-- priorities (by primary key), the chosen queue's load (its row, which the claim has locked), and for each queue
-- with no head whether it has OPEN tasks at all: one probe each of the partial index of OPEN tasks, which tells
-- "its tasks need a skill you lack" (and which) from "nothing open". Queues ranked below the chosen one were not
-- tried (`ranked_lower`; unless the claim waited: then they were busy first): the next two are listed. Each list holds at most p_limit queues (the chosen one always);
-- the rest are counted in `omitted`, so the row stays small and the work bounded however many queues one works.
CREATE OR REPLACE FUNCTION flowable.claim_next_routing(
    p_queues text[], p_skills text[], p_ranked text[], p_heads bigint[], p_passed jsonb[], p_chosen integer,
    p_task_id bigint, p_waited boolean, p_limit integer DEFAULT 10
) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c_lower_listed CONSTANT integer := 2;
    v_ranked jsonb;
    v_ranked_listed integer;
    v_headless jsonb := '[]';
    v_headless_count integer := cardinality(p_queues) - cardinality(p_ranked);
BEGIN
    SELECT coalesce(jsonb_agg(
               jsonb_build_object('queue', r.queue_name, 'head_priority', t.effective_priority)
               || CASE WHEN r.rank < p_chosen THEN coalesce(p_passed[r.rank], '{}')
                       WHEN r.rank = p_chosen THEN
                            (SELECT jsonb_build_object('chosen', true, 'load', q.current_load,
                                                       'capacity', q.max_capacity)
                               FROM queues.workflow_queues q WHERE q.queue_name = r.queue_name)
                       ELSE coalesce(p_passed[r.rank], jsonb_build_object('reason', 'ranked_lower')) END
               ORDER BY r.rank), '[]'),
           count(*)
      INTO v_ranked, v_ranked_listed
      FROM unnest(p_ranked, p_heads) WITH ORDINALITY AS r(queue_name, head, rank)
      LEFT JOIN flowable.workflow_tasks t ON t.task_id = r.head
     WHERE r.rank <= least(p_chosen + c_lower_listed, p_limit) OR r.rank = p_chosen;

    IF v_headless_count > 0 THEN
        SELECT coalesce(jsonb_agg(
                   jsonb_build_object('queue', u.queue_name)
                   || CASE WHEN h.required_skills IS NULL THEN jsonb_build_object('reason', 'no_open_task')
                           ELSE jsonb_build_object(
                                    'reason', 'missing_skills',
                                    'missing', ARRAY(SELECT s FROM unnest(h.required_skills::text[]) AS s
                                                      WHERE s <> ALL (coalesce(p_skills, '{}')) ORDER BY s)) END
                   ORDER BY u.position), '[]')
          INTO v_headless
          FROM (SELECT u.queue_name, u.position
                  FROM unnest(p_queues) WITH ORDINALITY AS u(queue_name, position)
                 WHERE u.queue_name <> ALL (p_ranked)
                 ORDER BY u.position
                 LIMIT p_limit) u
          LEFT JOIN LATERAL (
                SELECT t.required_skills
                  FROM flowable.workflow_tasks t
                 WHERE t.queue_name = u.queue_name AND t.status = 'OPEN' AND NOT t.suspended
                 ORDER BY t.effective_priority DESC, t.created_at, t.task_id
                 LIMIT 1
          ) h ON true;
    END IF;

    RETURN jsonb_build_object(
        'kind', 'claim_next',
        'strategy', 'CLAIM_NEXT',
        'rule', 'best_open_task',
        'chosen', p_ranked[p_chosen],
        'took_head', p_task_id = p_heads[p_chosen],
        'waited', p_waited,
        'queues', v_ranked || v_headless,
        'omitted', cardinality(p_ranked) - v_ranked_listed + greatest(v_headless_count - p_limit, 0)
    );
END
$$;
