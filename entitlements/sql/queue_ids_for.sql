-- entitlements.queue_ids_for: the ids of the queues a user reaches at p_at with one of p_capabilities, by the rule
-- entitlements.queue_grants. PL/pgSQL so PostgreSQL keeps the plan of the inlined rule between calls; STABLE and
-- ROWS 10 so a caller's planner expects a handful of queues and probes the task table's queue index per queue.
-- Python reaches it through entitlements/access.py only; claim-next through entitlements.work_access_for.
CREATE OR REPLACE FUNCTION entitlements.queue_ids_for(p_user_id bigint, p_capabilities text[], p_at timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE ROWS 10 AS $$
BEGIN
    RETURN QUERY SELECT g.queue_id FROM entitlements.queue_grants(p_capabilities, p_at) g WHERE g.user_id = p_user_id;
END
$$;
