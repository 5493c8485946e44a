-- entitlements.user_ids_with: the ids of the users who hold one of p_capabilities on a queue at p_at, by the rule
-- entitlements.queue_grants (the inverse of entitlements.queue_ids_for): routing, the SLA sweep's supervisor, the
-- queue admin's "who can work it now". PL/pgSQL for a kept plan, STABLE and ROWS 10 like queue_ids_for.
CREATE OR REPLACE FUNCTION entitlements.user_ids_with(p_queue_id bigint, p_capabilities text[], p_at timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE ROWS 10 AS $$
BEGIN
    RETURN QUERY SELECT g.user_id FROM entitlements.queue_grants(p_capabilities, p_at) g WHERE g.queue_id = p_queue_id;
END
$$;
