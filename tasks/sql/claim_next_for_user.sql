-- flowable.claim_next_for_user: claim-next for a user, with the user's workable queues and skills resolved in the
-- database (entitlements.work_access_for, remembered between claims), optionally narrowed to requested queues.
-- The whole claim-next path is one statement from Python.
--
-- It runs as its caller, under row-level security: the claim reads and writes the tasks of the user's workable
-- queues, which the row scope of a transaction acting for that user covers (they are among the queues the user
-- may view), and so does the system scope. A transaction that acts for nobody (a claim sent as one statement,
-- outside a transaction, from flowable.claim_next_task's callers or a benchmark) gets the user's scope narrowed to
-- those queues for this call only, with no extra round trip; one acting for another user is refused.
CREATE OR REPLACE FUNCTION flowable.claim_next_for_user(
    p_user_id bigint, p_requested_queues text[] DEFAULT NULL, p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql AS $$
DECLARE
    v_queues text[];
    v_skills text[];
    v_acting bigint := entitlements.acting_user_id();
    v_scoped_here boolean := false;
BEGIN
    IF v_acting IS DISTINCT FROM p_user_id AND entitlements.acting_scope() <> 'system' THEN
        IF v_acting IS NOT NULL OR entitlements.acting_scope() <> '' THEN
            RAISE EXCEPTION 'a transaction acting for user % may not claim for user %', v_acting, p_user_id
                  USING ERRCODE = 'insufficient_privilege';
        END IF;
        v_scoped_here := true;
    END IF;
    SELECT a.queue_names, a.skills INTO v_queues, v_skills FROM entitlements.work_access_for(p_user_id) a;
    IF p_requested_queues IS NOT NULL THEN
        v_queues := ARRAY(SELECT q FROM unnest(v_queues) AS q WHERE q = ANY (p_requested_queues));
    END IF;
    IF cardinality(v_queues) = 0 THEN
        RETURN;
    END IF;
    IF v_scoped_here THEN
        PERFORM set_config('workflow.user_id', p_user_id::text, true),
                set_config('workflow.queue_names', v_queues::text, true);
    END IF;
    RETURN QUERY SELECT * FROM flowable.claim_next_task(p_user_id, v_queues, v_skills, p_via_account_id);
    IF v_scoped_here THEN
        PERFORM set_config('workflow.user_id', '', true), set_config('workflow.queue_names', '', true);
    END IF;
END
$$;
