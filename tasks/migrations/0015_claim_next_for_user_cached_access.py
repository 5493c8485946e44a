"""flowable.claim_next_for_user reads the caller's workable queues and skills through entitlements.work_access_for.

Same rule and same answer as before (entitlements.queue_ids_for with 'work', now), remembered between claims
until an entitlement changes or one of the user's assignments starts or ends (entitlements migration 0005).
"""
from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION flowable.claim_next_for_user(
    p_user_id bigint, p_requested_queues text[] DEFAULT NULL, p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql AS $$
DECLARE
    v_queues text[];
    v_skills text[];
BEGIN
    SELECT a.queue_names, a.skills INTO v_queues, v_skills FROM entitlements.work_access_for(p_user_id) a;
    IF p_requested_queues IS NOT NULL THEN
        v_queues := ARRAY(SELECT q FROM unnest(v_queues) AS q WHERE q = ANY (p_requested_queues));
    END IF;
    IF cardinality(v_queues) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM flowable.claim_next_task(p_user_id, v_queues, v_skills, p_via_account_id);
END
$$;
"""

# The version this migration replaces (migration 0007), frozen here: reversing restores it.
PREVIOUS = """
CREATE OR REPLACE FUNCTION flowable.claim_next_for_user(
    p_user_id bigint, p_requested_queues text[] DEFAULT NULL, p_via_account_id bigint DEFAULT NULL
) RETURNS SETOF flowable.workflow_tasks
LANGUAGE plpgsql AS $$
DECLARE
    v_queues text[];
    v_skills text[];
BEGIN
    v_queues := ARRAY(
        SELECT q.queue_name::text
          FROM queues.workflow_queues q
         WHERE q.queue_id IN (SELECT entitlements.queue_ids_for(p_user_id, ARRAY['work'], now()))
           AND (p_requested_queues IS NULL OR q.queue_name = ANY (p_requested_queues))
    );
    IF cardinality(v_queues) = 0 THEN
        RETURN;
    END IF;
    v_skills := ARRAY(
        SELECT s.skill_code::text
          FROM entitlements.user_skills us JOIN entitlements.skills s ON s.skill_id = us.skill_id
         WHERE us.user_id = p_user_id
    );
    RETURN QUERY SELECT * FROM flowable.claim_next_task(p_user_id, v_queues, v_skills, p_via_account_id);
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("tasks", "0014_archived_task_models"), ("entitlements", "0005_work_access_cache"),
                    ("queues", "0003_access_epoch_triggers")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=PREVIOUS)]
