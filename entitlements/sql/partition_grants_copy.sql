-- entitlements.partition_grants_copy: grant p_target, a partition just made, what p_source, a sibling the migrations
-- made (its table's DEFAULT partition), is granted: the grants grants_apply (core/db_roles.py) gives every partition
-- after a migrate, row-level security's rule included (where the parent has it, only the roles that bypass it may
-- read a partition by name). A partition made later (the daily job's months ahead, the archive's months) is
-- otherwise its owner's alone, and a pg_dump or the archive job as the maintenance role fails on it.
--
-- Not SECURITY DEFINER and executable by its owner only: the functions that create partitions call it.
CREATE OR REPLACE FUNCTION entitlements.partition_grants_copy(p_source regclass, p_target regclass)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_grant record;
BEGIN
    FOR v_grant IN
        SELECT r.rolname, string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privileges
          FROM pg_class source
         CROSS JOIN LATERAL aclexplode(source.relacl) a
          JOIN pg_roles r ON r.oid = a.grantee
         WHERE source.oid = p_source AND a.grantee <> source.relowner
         GROUP BY r.rolname
    LOOP
        EXECUTE format('GRANT %s ON %s TO %I', v_grant.privileges, p_target, v_grant.rolname);
    END LOOP;
END
$function$;
