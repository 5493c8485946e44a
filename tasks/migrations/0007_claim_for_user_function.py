"""flowable.claim_next_for_user: resolve the caller's workable queues and skills in the database and claim.

The whole claim-next path is then one statement from Python, with every plan cached by PostgreSQL: the access
rule (entitlements.queue_ids_for), the user's skills and flowable.claim_next_task.
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

DROP = "DROP FUNCTION IF EXISTS flowable.claim_next_for_user(bigint, text[], bigint);"


class Migration(migrations.Migration):
    dependencies = [("tasks", "0006_task_archive"), ("entitlements", "0003_queue_ids_for_function")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
