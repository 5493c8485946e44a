-- entitlements.acting_queue_names: the queues whose rows the current transaction reaches (the setting
-- workflow.queue_names: the acting user's viewable queues, by the one access rule), or none. After a transaction
-- that set it, PostgreSQL keeps the setting as '', hence the nullif. Policies read it as
-- `(SELECT entitlements.acting_queue_names())`: parsed once per statement, and an index condition can use it.
CREATE OR REPLACE FUNCTION entitlements.acting_queue_names() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(nullif(current_setting('workflow.queue_names', true), ''), '{}')::text[]
$$;
