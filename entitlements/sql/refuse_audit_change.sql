-- entitlements.refuse_audit_change: the security audit is append-only; UPDATE, DELETE and TRUNCATE fail, whoever asks.
CREATE OR REPLACE FUNCTION entitlements.refuse_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows of %.% are append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
