-- entitlements.acting_user_id: the user the current transaction acts for (the setting workflow.user_id, which
-- entitlements.row_scope_set writes), or NULL when it acts for nobody. Row-level security policies read it as
-- `(SELECT entitlements.acting_user_id())`, so it is read once per statement; a SQL function PostgreSQL inlines.
CREATE OR REPLACE FUNCTION entitlements.acting_user_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('workflow.user_id', true), '')::bigint
$$;
