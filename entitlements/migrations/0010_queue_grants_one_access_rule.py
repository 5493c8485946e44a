"""The queue-access rule written once: entitlements.queue_grants, asked in both directions.

entitlements.queue_ids_for (which queues a user reaches) held the rule in PL/pgSQL, and entitlements/access.py's
users_with (who reaches a queue) held it again as a Django query. Both now read entitlements.queue_grants: the
(user, queue) pairs the rule grants, a SQL function PostgreSQL inlines so that the caller's user or queue condition
reaches every branch. queue_ids_for keeps its signature and answers; entitlements.user_ids_with is the inverse.
Same tables read, so the access epoch triggers and the claim path's cache (migration 0005) need no change.
"""
from django.db import migrations

CREATE = """
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

CREATE OR REPLACE FUNCTION entitlements.queue_ids_for(p_user_id bigint, p_capabilities text[], p_at timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE ROWS 10 AS $$
BEGIN
    RETURN QUERY SELECT g.queue_id FROM entitlements.queue_grants(p_capabilities, p_at) g WHERE g.user_id = p_user_id;
END
$$;

CREATE OR REPLACE FUNCTION entitlements.user_ids_with(p_queue_id bigint, p_capabilities text[], p_at timestamptz)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE ROWS 10 AS $$
BEGIN
    RETURN QUERY SELECT g.user_id FROM entitlements.queue_grants(p_capabilities, p_at) g WHERE g.queue_id = p_queue_id;
END
$$;
"""

# Migration 0004's queue_ids_for, frozen here: reversing restores it.
PREVIOUS = """
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

DROP FUNCTION IF EXISTS entitlements.user_ids_with(bigint, text[], timestamptz);
DROP FUNCTION IF EXISTS entitlements.queue_grants(text[], timestamptz);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0009_security_events_append_only_by_pgtrigger"),
        ("queues", "0003_access_epoch_triggers"),
    ]
    operations = [migrations.RunSQL(CREATE, reverse_sql=PREVIOUS)]
