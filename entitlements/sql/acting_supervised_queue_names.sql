-- entitlements.acting_supervised_queue_names: the queues the acting user supervises now (the setting
-- workflow.supervised_queue_names), a part of entitlements.acting_queue_names: the supervisor console shows the
-- cases whose work passed through them (cases/selectors.py: supervised_case_filter). Read once per statement as
-- `(SELECT entitlements.acting_supervised_queue_names())`.
CREATE OR REPLACE FUNCTION entitlements.acting_supervised_queue_names() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(nullif(current_setting('workflow.supervised_queue_names', true), ''), '{}')::text[]
$$;
