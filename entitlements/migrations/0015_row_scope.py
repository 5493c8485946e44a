"""Row scope: the settings row-level security reads, and the viewable queues remembered with the workable ones.

Every transaction that reaches tasks, history, instances, cases, events or mappings sets three transaction-local
settings first (entitlements/row_scope.py calls entitlements.row_scope_set): the acting user, the queues that user
may view and supervise now (by the one access rule) and whether it acts as the system or as a superuser reading
every row. The acting_* functions read them for the policies (tasks and cases migrations). Those queues are
remembered in entitlements.work_access_cache beside the workable ones, under the same epoch, so a transaction pays
a cache lookup rather than the rule; the cache is emptied (always safe) since its rows lack the new columns.
"""
from django.db import migrations

ACTING = """
-- entitlements.acting_user_id: the user the current transaction acts for (the setting workflow.user_id, which
-- entitlements.row_scope_set writes), or NULL when it acts for nobody. Row-level security policies read it as
-- `(SELECT entitlements.acting_user_id())`, so it is read once per statement; a SQL function PostgreSQL inlines.
CREATE OR REPLACE FUNCTION entitlements.acting_user_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('workflow.user_id', true), '')::bigint
$$;

-- entitlements.acting_queue_names: the queues whose rows the current transaction reaches (the setting
-- workflow.queue_names: the acting user's viewable queues, by the one access rule), or none. After a transaction
-- that set it, PostgreSQL keeps the setting as '', hence the nullif. Policies read it as
-- `(SELECT entitlements.acting_queue_names())`: parsed once per statement, and an index condition can use it.
CREATE OR REPLACE FUNCTION entitlements.acting_queue_names() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(nullif(current_setting('workflow.queue_names', true), ''), '{}')::text[]
$$;

-- entitlements.acting_supervised_queue_names: the queues the acting user supervises now (the setting
-- workflow.supervised_queue_names), a part of entitlements.acting_queue_names: the supervisor console shows the
-- cases whose work passed through them (cases/selectors.py: supervised_case_filter). Read once per statement as
-- `(SELECT entitlements.acting_supervised_queue_names())`.
CREATE OR REPLACE FUNCTION entitlements.acting_supervised_queue_names() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(nullif(current_setting('workflow.supervised_queue_names', true), ''), '{}')::text[]
$$;

-- entitlements.acting_scope: what the current transaction reaches beyond its user's rows (the setting
-- workflow.scope): 'system' every row, to read and write (beat jobs, management commands, the engine's own
-- steps); 'superuser' every row, to read only (entitlements.access.console_shows_every_row); '' nothing more.
CREATE OR REPLACE FUNCTION entitlements.acting_scope() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('workflow.scope', true), '')
$$;
"""

CACHE = """
DELETE FROM entitlements.work_access_cache;
ALTER TABLE entitlements.work_access_cache ADD COLUMN view_queue_names text[] NOT NULL DEFAULT '{}',
                                          ADD COLUMN supervise_queue_names text[] NOT NULL DEFAULT '{}';
DROP FUNCTION entitlements.work_access_for(bigint);

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
"""

CACHE_REVERSE = """
DROP FUNCTION IF EXISTS entitlements.row_scope_set(bigint, text);
DROP FUNCTION entitlements.work_access_for(bigint);
DELETE FROM entitlements.work_access_cache;
ALTER TABLE entitlements.work_access_cache DROP COLUMN view_queue_names, DROP COLUMN supervise_queue_names;

-- entitlements.work_access_for: the queues a user may work and the skills they hold, remembered between claims in
-- entitlements.work_access_cache.
--
-- An entry is used only while its epoch is the current entitlements.access_epoch (every change to a row the
-- access rule reads bumps it, by trigger) and now() is before valid_until, the next moment one of the user's
-- assignments starts or ends. A miss evaluates the rule, the skills, the epoch and valid_until in one statement
-- (one snapshot) and stores them; an entry computed from an older snapshot never replaces a newer one, and a
-- claim never waits for another transaction that is storing the same user's answer. The cache holds nothing
-- that is not derived: deleting its rows is always safe.
CREATE OR REPLACE FUNCTION entitlements.work_access_for(p_user_id bigint, OUT queue_names text[], OUT skills text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_epoch bigint;
    v_valid_until timestamptz;
BEGIN
    SELECT c.queue_names, c.skills INTO queue_names, skills
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
           COALESCE((SELECT min(CASE WHEN a.valid_from > now() THEN a.valid_from ELSE a.valid_until END)
                       FROM entitlements.user_role_assignments a
                      WHERE a.user_id = p_user_id AND a.revoked_at IS NULL
                        AND (a.valid_from > now() OR a.valid_until > now())), 'infinity')
      INTO v_epoch, queue_names, skills, v_valid_until
      FROM entitlements.access_epoch e;
    -- Store it, unless another transaction is storing its own answer for this user right now: waiting for it
    -- would queue every concurrent claim of the user behind that claim's commit. The answer is used either way.
    PERFORM 1 FROM entitlements.work_access_cache c WHERE c.user_id = p_user_id FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        UPDATE entitlements.work_access_cache c
           SET epoch = v_epoch, valid_until = v_valid_until,
               queue_names = work_access_for.queue_names, skills = work_access_for.skills
         WHERE c.user_id = p_user_id AND c.epoch <= v_epoch;
    ELSIF NOT EXISTS (SELECT 1 FROM entitlements.work_access_cache c WHERE c.user_id = p_user_id) THEN
        INSERT INTO entitlements.work_access_cache (user_id, epoch, valid_until, queue_names, skills)
        VALUES (p_user_id, v_epoch, v_valid_until, queue_names, skills)
        ON CONFLICT (user_id) DO NOTHING;
    END IF;
END
$$;
"""

ACTING_REVERSE = """
DROP FUNCTION IF EXISTS entitlements.acting_user_id();
DROP FUNCTION IF EXISTS entitlements.acting_queue_names();
DROP FUNCTION IF EXISTS entitlements.acting_supervised_queue_names();
DROP FUNCTION IF EXISTS entitlements.acting_scope();
"""


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0014_personal_data_events")]
    operations = [
        migrations.RunSQL(ACTING, reverse_sql=ACTING_REVERSE),
        migrations.RunSQL(CACHE, reverse_sql=CACHE_REVERSE),
    ]
