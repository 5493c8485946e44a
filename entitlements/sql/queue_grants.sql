-- entitlements.queue_grants: the queue-access rule, the one place it is written. A row (user_id, queue_id) for every
-- queue on which a user holds one of p_capabilities at p_at:
-- - an active user holds a capability on a queue directly (a queue permission of the user),
-- - or through a role one of whose assignments is in force at p_at (not revoked, valid_from <= p_at < valid_until):
--   a queue permission of the role's group,
-- - or through such a role scoped to the queue's department or to one of its ancestors, listing the capability.
-- Which capabilities grant which (work also grants view) is entitlements/access.py's GRANTING_CAPABILITIES.
--
-- Both questions ask it: entitlements.queue_ids_for (which queues may this user ... now) and
-- entitlements.user_ids_with (who may ... this queue now). A SQL function, STABLE, without STRICT or SET, so that
-- PostgreSQL inlines it into each caller's query and pushes the caller's user or queue condition into every branch
-- (roles_in_force is NOT MATERIALIZED for the same reason); the permission ids and the departments each scoped role
-- covers depend on neither, so they are computed once. Every table read here moves entitlements.access_epoch when
-- it changes (the *_bump_access_epoch triggers): claim-next remembers answers until it moves.
CREATE OR REPLACE FUNCTION entitlements.queue_grants(p_capabilities text[], p_at timestamptz)
RETURNS TABLE (user_id bigint, queue_id bigint)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE
    permission_ids AS (
        SELECT ap.id
          FROM auth_permission ap JOIN django_content_type ct ON ct.id = ap.content_type_id
         WHERE ct.app_label = 'queues' AND ct.model = 'workflowqueue'
           AND ap.codename = ANY (ARRAY(SELECT c || '_workflowqueue' FROM unnest(p_capabilities) AS c))
    ),
    roles_in_force AS NOT MATERIALIZED (
        SELECT a.user_id, r.group_id, r.department_id, r.permissions
          FROM entitlements.user_role_assignments a
          JOIN entitlements.users u ON u.id = a.user_id AND u.is_active
          JOIN entitlements.workflow_roles r ON r.role_id = a.role_id
         WHERE a.revoked_at IS NULL AND a.valid_from <= p_at AND (a.valid_until IS NULL OR a.valid_until > p_at)
    ),
    department_scope(scope_id, department_id) AS (
        SELECT r.department_id, r.department_id
          FROM entitlements.workflow_roles r
         WHERE r.department_id IS NOT NULL AND r.permissions ?| p_capabilities
        UNION
        SELECT s.scope_id, d.department_id
          FROM entitlements.departments d JOIN department_scope s ON d.parent_id = s.department_id
    )
    SELECT p.user_id, p.content_object_id
      FROM queues.queue_user_permissions p JOIN entitlements.users u ON u.id = p.user_id AND u.is_active
     WHERE p.permission_id IN (SELECT id FROM permission_ids)
    UNION
    SELECT r.user_id, gp.content_object_id
      FROM roles_in_force r JOIN queues.queue_group_permissions gp ON gp.group_id = r.group_id
     WHERE gp.permission_id IN (SELECT id FROM permission_ids)
    UNION
    SELECT r.user_id, q.queue_id
      FROM roles_in_force r
      JOIN department_scope s ON s.scope_id = r.department_id
      JOIN queues.workflow_queues q ON q.department_id = s.department_id
     WHERE r.permissions ?| p_capabilities
$$;
