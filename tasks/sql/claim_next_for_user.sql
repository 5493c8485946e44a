-- flowable.claim_next_for_user: claim-next for a user, with the user's workable queues and skills resolved in the
-- database (entitlements.work_access_for, remembered between claims), optionally narrowed to requested queues.
-- The whole claim-next path is one statement from Python.
CREATE OR REPLACE FUNCTION flowable.claim_next_for_user(
    p_user_id bigint, p_requested_queues text[] DEFAULT NULL, p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql AS $$
DECLARE
    v_queues text[];
    v_skills text[];
BEGIN
    SELECT a.queue_names, a.skills INTO v_queues, v_skills FROM entitlements.work_access_for(p_user_id) a;
    IF p_requested_queues IS NOT NULL THEN
        v_queues := ARRAY(SELECT q FROM unnest(v_queues) AS q WHERE q = ANY (p_requested_queues));
    END IF;
    IF cardinality(v_queues) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM flowable.claim_next_task(p_user_id, v_queues, v_skills, p_via_account_id);
END
$$;
