-- entitlements.acting_scope: what the current transaction reaches beyond its user's rows (the setting
-- workflow.scope): 'system' every row, to read and write (beat jobs, management commands, the engine's own
-- steps); 'superuser' every row, to read only (entitlements.access.console_shows_every_row); '' nothing more.
CREATE OR REPLACE FUNCTION entitlements.acting_scope() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('workflow.scope', true), '')
$$;
