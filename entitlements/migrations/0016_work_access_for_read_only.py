"""entitlements.work_access_for in a read-only transaction: use the answer, do not store it.

A hot standby runs every transaction read-only; the row scope that reads on a read replica need
(entitlements.row_scope_set, core/replica.py) calls work_access_for, whose miss stored its answer with SELECT ... FOR
UPDATE and an UPDATE or INSERT, which a read-only transaction refuses. It now returns the answer unstored there.
"""
from django.db import migrations

FUNCTION = """
-- entitlements.work_access_for: the queues a user may work, the skills they hold, and the queues they may view and
-- supervise, remembered between claims and transactions in entitlements.work_access_cache. Claim-next reads the
-- first two; every transaction's row scope the last two (entitlements.row_scope_set). The capabilities that grant
-- each are entitlements/access.py's GRANTING_CAPABILITIES (a test holds them equal).
--
-- An entry is used only while its epoch is the current entitlements.access_epoch (every change to a row the
-- access rule reads bumps it, by trigger) and now() is before valid_until, the next moment one of the user's
-- assignments starts or ends. A miss evaluates the rule, the skills, the epoch and valid_until in one statement
-- (one snapshot) and stores them; an entry computed from an older snapshot never replaces a newer one, and a
-- claim never waits for another transaction that is storing the same user's answer. A read-only transaction (on
-- a hot standby, whose row scope core/replica.py's reads need) uses the answer without storing it. The cache
-- holds nothing that is not derived: deleting its rows is always safe.
CREATE OR REPLACE FUNCTION entitlements.work_access_for(
    p_user_id bigint, OUT queue_names text[], OUT skills text[], OUT view_queue_names text[],
    OUT supervise_queue_names text[]
)
LANGUAGE plpgsql AS $$
DECLARE
    v_epoch bigint;
    v_valid_until timestamptz;
BEGIN
    SELECT c.queue_names, c.skills, c.view_queue_names, c.supervise_queue_names
      INTO queue_names, skills, view_queue_names, supervise_queue_names
      FROM entitlements.work_access_cache c
     WHERE c.user_id = p_user_id
       AND c.valid_until > now()
       AND c.epoch = (SELECT e.epoch FROM entitlements.access_epoch e);
    IF FOUND THEN
        RETURN;
    END IF;
    -- One statement, so the epoch, the rule's answer and the window all come from the same snapshot.
    SELECT e.epoch,
           ARRAY(SELECT q.queue_name::text
                   FROM queues.workflow_queues q
                  WHERE q.queue_id IN (SELECT entitlements.queue_ids_for(p_user_id, ARRAY['work'], now()))
                  ORDER BY q.queue_name),
           ARRAY(SELECT s.skill_code::text
                   FROM entitlements.user_skills us JOIN entitlements.skills s ON s.skill_id = us.skill_id
                  WHERE us.user_id = p_user_id
                  ORDER BY s.skill_code),
           ARRAY(SELECT q.queue_name::text
                   FROM queues.workflow_queues q
                  WHERE q.queue_id IN (SELECT entitlements.queue_ids_for(p_user_id,
                                                                         ARRAY['view', 'work', 'supervise'], now()))
                  ORDER BY q.queue_name),
           ARRAY(SELECT q.queue_name::text
                   FROM queues.workflow_queues q
                  WHERE q.queue_id IN (SELECT entitlements.queue_ids_for(p_user_id, ARRAY['supervise'], now()))
                  ORDER BY q.queue_name),
           COALESCE((SELECT min(CASE WHEN a.valid_from > now() THEN a.valid_from ELSE a.valid_until END)
                       FROM entitlements.user_role_assignments a
                      WHERE a.user_id = p_user_id AND a.revoked_at IS NULL
                        AND (a.valid_from > now() OR a.valid_until > now())), 'infinity')
      INTO v_epoch, queue_names, skills, view_queue_names, supervise_queue_names, v_valid_until
      FROM entitlements.access_epoch e;
    IF current_setting('transaction_read_only')::boolean THEN
        RETURN;
    END IF;
    -- Store it, unless another transaction is storing its own answer for this user right now: waiting for it
    -- would queue every concurrent claim of the user behind that claim's commit. The answer is used either way.
    PERFORM 1 FROM entitlements.work_access_cache c WHERE c.user_id = p_user_id FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        UPDATE entitlements.work_access_cache c
           SET epoch = v_epoch, valid_until = v_valid_until,
               queue_names = work_access_for.queue_names, skills = work_access_for.skills,
               view_queue_names = work_access_for.view_queue_names,
               supervise_queue_names = work_access_for.supervise_queue_names
         WHERE c.user_id = p_user_id AND c.epoch <= v_epoch;
    ELSIF NOT EXISTS (SELECT 1 FROM entitlements.work_access_cache c WHERE c.user_id = p_user_id) THEN
        INSERT INTO entitlements.work_access_cache (user_id, epoch, valid_until, queue_names, skills,
                                                    view_queue_names, supervise_queue_names)
        VALUES (p_user_id, v_epoch, v_valid_until, queue_names, skills, view_queue_names, supervise_queue_names)
        ON CONFLICT (user_id) DO NOTHING;
    END IF;
END
$$;
"""

FUNCTION_REVERSE = """
-- entitlements.work_access_for: the queues a user may work, the skills they hold, and the queues they may view and
-- supervise, remembered between claims and transactions in entitlements.work_access_cache. Claim-next reads the
-- first two; every transaction's row scope the last two (entitlements.row_scope_set). The capabilities that grant
-- each are entitlements/access.py's GRANTING_CAPABILITIES (a test holds them equal).
--
-- An entry is used only while its epoch is the current entitlements.access_epoch (every change to a row the
-- access rule reads bumps it, by trigger) and now() is before valid_until, the next moment one of the user's
-- assignments starts or ends. A miss evaluates the rule, the skills, the epoch and valid_until in one statement
-- (one snapshot) and stores them; an entry computed from an older snapshot never replaces a newer one, and a
-- claim never waits for another transaction that is storing the same user's answer. The cache holds nothing
-- that is not derived: deleting its rows is always safe.
CREATE OR REPLACE FUNCTION entitlements.work_access_for(
    p_user_id bigint, OUT queue_names text[], OUT skills text[], OUT view_queue_names text[],
    OUT supervise_queue_names text[]
)
LANGUAGE plpgsql AS $$
DECLARE
    v_epoch bigint;
    v_valid_until timestamptz;
BEGIN
    SELECT c.queue_names, c.skills, c.view_queue_names, c.supervise_queue_names
      INTO queue_names, skills, view_queue_names, supervise_queue_names
      FROM entitlements.work_access_cache c
     WHERE c.user_id = p_user_id
       AND c.valid_until > now()
       AND c.epoch = (SELECT e.epoch FROM entitlements.access_epoch e);
    IF FOUND THEN
        RETURN;
    END IF;
    -- One statement, so the epoch, the rule's answer and the window all come from the same snapshot.
    SELECT e.epoch,
           ARRAY(SELECT q.queue_name::text
                   FROM queues.workflow_queues q
                  WHERE q.queue_id IN (SELECT entitlements.queue_ids_for(p_user_id, ARRAY['work'], now()))
                  ORDER BY q.queue_name),
           ARRAY(SELECT s.skill_code::text
                   FROM entitlements.user_skills us JOIN entitlements.skills s ON s.skill_id = us.skill_id
                  WHERE us.user_id = p_user_id
                  ORDER BY s.skill_code),
           ARRAY(SELECT q.queue_name::text
                   FROM queues.workflow_queues q
                  WHERE q.queue_id IN (SELECT entitlements.queue_ids_for(p_user_id,
                                                                         ARRAY['view', 'work', 'supervise'], now()))
                  ORDER BY q.queue_name),
           ARRAY(SELECT q.queue_name::text
                   FROM queues.workflow_queues q
                  WHERE q.queue_id IN (SELECT entitlements.queue_ids_for(p_user_id, ARRAY['supervise'], now()))
                  ORDER BY q.queue_name),
           COALESCE((SELECT min(CASE WHEN a.valid_from > now() THEN a.valid_from ELSE a.valid_until END)
                       FROM entitlements.user_role_assignments a
                      WHERE a.user_id = p_user_id AND a.revoked_at IS NULL
                        AND (a.valid_from > now() OR a.valid_until > now())), 'infinity')
      INTO v_epoch, queue_names, skills, view_queue_names, supervise_queue_names, v_valid_until
      FROM entitlements.access_epoch e;
    -- Store it, unless another transaction is storing its own answer for this user right now: waiting for it
    -- would queue every concurrent claim of the user behind that claim's commit. The answer is used either way.
    PERFORM 1 FROM entitlements.work_access_cache c WHERE c.user_id = p_user_id FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        UPDATE entitlements.work_access_cache c
           SET epoch = v_epoch, valid_until = v_valid_until,
               queue_names = work_access_for.queue_names, skills = work_access_for.skills,
               view_queue_names = work_access_for.view_queue_names,
               supervise_queue_names = work_access_for.supervise_queue_names
         WHERE c.user_id = p_user_id AND c.epoch <= v_epoch;
    ELSIF NOT EXISTS (SELECT 1 FROM entitlements.work_access_cache c WHERE c.user_id = p_user_id) THEN
        INSERT INTO entitlements.work_access_cache (user_id, epoch, valid_until, queue_names, skills,
                                                    view_queue_names, supervise_queue_names)
        VALUES (p_user_id, v_epoch, v_valid_until, queue_names, skills, view_queue_names, supervise_queue_names)
        ON CONFLICT (user_id) DO NOTHING;
    END IF;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0015_row_scope")]
    operations = [migrations.RunSQL(FUNCTION, reverse_sql=FUNCTION_REVERSE)]
