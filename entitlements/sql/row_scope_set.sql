-- entitlements.row_scope_set: set the current transaction's row scope, the transaction-local settings the row-level
-- security policies read (entitlements.acting_user_id, acting_queue_names, acting_supervised_queue_names,
-- acting_scope):
-- - a user (p_user_id), with the queues they may view and supervise by the one access rule, remembered between
--   transactions in entitlements.work_access_cache (entitlements.work_access_for), and p_scope '' or 'superuser';
-- - nobody, with p_scope 'system' (every row) or '' (no row).
-- entitlements/row_scope.py calls it before the first statement of a transaction, in one round trip.
CREATE OR REPLACE FUNCTION entitlements.row_scope_set(p_user_id bigint, p_scope text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_view text[] := '{}';
    v_supervise text[] := '{}';
BEGIN
    IF p_scope NOT IN ('', 'system', 'superuser') OR (p_scope = 'system' AND p_user_id IS NOT NULL)
       OR (p_scope = 'superuser' AND p_user_id IS NULL) THEN
        RAISE EXCEPTION 'row scope % for user % is not a row scope', p_scope, p_user_id
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_user_id IS NOT NULL THEN
        SELECT a.view_queue_names, a.supervise_queue_names INTO v_view, v_supervise
          FROM entitlements.work_access_for(p_user_id) a;
    END IF;
    PERFORM set_config('workflow.user_id', coalesce(p_user_id::text, ''), true),
            set_config('workflow.scope', p_scope, true),
            set_config('workflow.queue_names', v_view::text, true),
            set_config('workflow.supervised_queue_names', v_supervise::text, true);
END
$$;
