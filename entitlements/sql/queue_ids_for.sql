-- entitlements.queue_ids_for: the ids of the queues a user reaches at p_at with one of p_capabilities.
-- PL/pgSQL so PostgreSQL keeps its plan between calls; STABLE and ROWS 10 so a caller's planner expects a
-- handful of queues. Python reaches it through entitlements/access.py only.
CREATE OR REPLACE FUNCTION entitlements.queue_ids_for(p_user_id bigint, p_capabilities text[], p_at timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE ROWS 10 AS $$
BEGIN
    RETURN QUERY
    WITH RECURSIVE
    active_user AS (
        SELECT u.id FROM entitlements.users u WHERE u.id = p_user_id AND u.is_active
    ),
    permission_ids AS (
        SELECT ap.id
          FROM auth_permission ap JOIN django_content_type ct ON ct.id = ap.content_type_id
         WHERE ct.app_label = 'queues' AND ct.model = 'workflowqueue'
           AND ap.codename = ANY (ARRAY(SELECT c || '_workflowqueue' FROM unnest(p_capabilities) AS c))
    ),
    roles_in_force AS (
        SELECT r.role_id, r.group_id, r.department_id, r.permissions
          FROM entitlements.user_role_assignments a
          JOIN active_user u ON u.id = a.user_id
          JOIN entitlements.workflow_roles r ON r.role_id = a.role_id
         WHERE a.revoked_at IS NULL AND a.valid_from <= p_at AND (a.valid_until IS NULL OR a.valid_until > p_at)
    ),
    subtree(department_id) AS (
        SELECT department_id FROM roles_in_force WHERE department_id IS NOT NULL AND permissions ?| p_capabilities
        UNION
        SELECT d.department_id FROM entitlements.departments d JOIN subtree s ON d.parent_id = s.department_id
    )
    SELECT p.content_object_id
      FROM queues.queue_user_permissions p JOIN active_user u ON u.id = p.user_id
     WHERE p.permission_id IN (SELECT id FROM permission_ids)
    UNION
    SELECT gp.content_object_id
      FROM roles_in_force r JOIN queues.queue_group_permissions gp ON gp.group_id = r.group_id
     WHERE gp.permission_id IN (SELECT id FROM permission_ids)
    UNION
    SELECT q.queue_id FROM queues.workflow_queues q WHERE q.department_id IN (SELECT department_id FROM subtree);
END
$$;
