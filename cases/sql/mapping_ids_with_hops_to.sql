-- onecms.mapping_ids_with_hops_to: the mappings whose routing history reached one of p_queues, read through
-- idx_case_mapping_hop_queues. Under row-level security PostgreSQL will not use that index for the application's
-- own query: `?|` is not leakproof, so it may only run after the mappings' policies, on every row. This reads the
-- index as the table's owner (SECURITY DEFINER), and only within the caller's row scope: the queues the acting user
-- supervises (the hop arm of onecms.case_reached_by_acting_queues), or any queue in the system or superuser scope.
-- It answers mapping ids only; the rows stay behind their policies. cases/selectors.py: _supervised_case_ids.
CREATE OR REPLACE FUNCTION onecms.mapping_ids_with_hops_to(p_queues text[])
RETURNS SETOF bigint
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms AS $$
    SELECT m.mapping_id
      FROM onecms.case_workflow_mapping m
     WHERE jsonb_path_query_array(m.routing_history, '$[*].to_queue')
           ?| CASE WHEN entitlements.acting_scope() IN ('system', 'superuser') THEN p_queues
                   ELSE ARRAY(SELECT unnest(p_queues)
                              INTERSECT SELECT unnest(entitlements.acting_supervised_queue_names())) END
$$;
