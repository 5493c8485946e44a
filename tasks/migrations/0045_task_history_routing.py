"""History events say why a task went where it went: task_history.routing, written by claim-next too.

Push routing, claim-next and a supervisor's reassignment or delegation record their reasons on the event that
moved the task (tasks/routing_explanation.py words them): the strategy, the candidates or queues considered with
their loads, capacities and skills, why each one passed over was, and the one chosen. A nullable column, added
without a table rewrite to the partitioned history and to its archive (whose columns must match the live table's,
tasks/sla/archive.py).

flowable.claim_next_task still finds and takes its task in one statement with the same index probes; it now
notes, as it goes, why each queue it tried was passed over, and its history insert calls
flowable.claim_next_routing, which adds the head priorities (by primary key), the chosen queue's load, and for
queues with no task for the caller one probe of the OPEN-task index each, to name the skills they need;
it lists the queues tried and the chosen one, and two of those ranked below it, each list capped at ten.
"""

from django.db import migrations, models

ROUTING_FUNCTION = """CREATE OR REPLACE FUNCTION flowable.claim_next_routing(
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
               jsonb_build_object('queue', r.queue_name, 'head_priority', t.priority)
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
                 ORDER BY t.priority DESC, t.created_at, t.task_id
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
"""

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

ARCHIVE_FORWARD = "ALTER TABLE flowable.task_history_archive ADD COLUMN routing jsonb"
ARCHIVE_BACKWARD = "ALTER TABLE flowable.task_history_archive DROP COLUMN routing"


class Migration(migrations.Migration):

    dependencies = [
        ("tasks", "0044_task_history_migrated_event"),
    ]

    operations = [
        migrations.AddField(
            model_name="taskhistory",
            name="routing",
            field=models.JSONField(
                blank=True,
                help_text="Why the task went where it went, on the event that moved it (push routing, claim-next, a "
                "supervisor's reassignment): the candidates considered and why each was passed over "
                "(tasks/routing_explanation.py).",
                null=True,
            ),
        ),
        migrations.RunSQL(ARCHIVE_FORWARD, reverse_sql=ARCHIVE_BACKWARD),
        migrations.RunSQL(
            ROUTING_FUNCTION,
            reverse_sql="DROP FUNCTION flowable.claim_next_routing(text[], text[], text[], bigint[], jsonb[], integer, "
            "bigint, boolean, integer)",
        ),
        migrations.RunSQL(CREATE, reverse_sql=PREVIOUS),
    ]
