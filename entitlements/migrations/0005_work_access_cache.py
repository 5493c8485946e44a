"""entitlements.work_access_for: the queues a user may work and the skills they hold, remembered between claims.

Evaluating the access rule (entitlements.queue_ids_for) on every claim-next costs about as much as the claim's
history row and queue load together. Its answer only changes when an entitlement row changes or when one of the
user's role assignments starts or ends, so the claim path keeps the answer in entitlements.work_access_cache:

- every change to a row the rule reads (users' active flag, role assignments, roles, departments, skills, and,
  from the queues app, queue permissions and queues' names and departments) bumps entitlements.access_epoch in
  the same transaction, by trigger. The new epoch becomes visible exactly when the change commits, so no session
  can use an answer computed before a committed change. Every change bumps, even several in one transaction:
  an answer the changing transaction computed between two of its changes must not outlive the second.
- an entry is used only while its epoch is the current one and `now()` is before `valid_until`: the next moment
  one of the user's assignments starts or ends.
- a miss evaluates the rule, the skills, the epoch and valid_until in one statement (one snapshot) and stores
  them; an entry computed from an older snapshot never replaces a newer one, and a claim never waits for
  another transaction that is storing the same user's answer.

The cache holds nothing that is not derived: deleting its rows is always safe.
"""
from django.db import migrations

CREATE = """
CREATE TABLE entitlements.access_epoch (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch bigint NOT NULL DEFAULT 1
);
INSERT INTO entitlements.access_epoch DEFAULT VALUES;

CREATE TABLE entitlements.work_access_cache (
    user_id bigint PRIMARY KEY,
    epoch bigint NOT NULL,
    valid_until timestamptz NOT NULL,
    queue_names text[] NOT NULL,
    skills text[] NOT NULL
);

CREATE FUNCTION entitlements.bump_access_epoch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE entitlements.access_epoch SET epoch = epoch + 1;
    RETURN NULL;
END
$$;

CREATE FUNCTION entitlements.work_access_for(p_user_id bigint, OUT queue_names text[], OUT skills text[])
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

# Row triggers, so a statement that changes nothing bumps nothing; TRUNCATE has only statement triggers.
TRIGGERS = """
CREATE TRIGGER user_role_assignments_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON entitlements.user_role_assignments
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER user_role_assignments_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.user_role_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();

CREATE TRIGGER workflow_roles_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON entitlements.workflow_roles
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER workflow_roles_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.workflow_roles
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();

CREATE TRIGGER departments_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON entitlements.departments
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER departments_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.departments
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();

CREATE TRIGGER skills_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON entitlements.skills
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER skills_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.skills
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();

CREATE TRIGGER user_skills_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON entitlements.user_skills
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER user_skills_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.user_skills
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();

CREATE TRIGGER users_bump_access_epoch
    AFTER INSERT OR DELETE ON entitlements.users
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER users_active_bumps_access_epoch
    AFTER UPDATE OF is_active ON entitlements.users
    FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER users_truncate_bumps_access_epoch
    AFTER TRUNCATE ON entitlements.users
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
"""

DROP = """DROP TRIGGER IF EXISTS user_role_assignments_bump_access_epoch ON entitlements.user_role_assignments;
DROP TRIGGER IF EXISTS user_role_assignments_truncate_bumps_access_epoch ON entitlements.user_role_assignments;
DROP TRIGGER IF EXISTS workflow_roles_bump_access_epoch ON entitlements.workflow_roles;
DROP TRIGGER IF EXISTS workflow_roles_truncate_bumps_access_epoch ON entitlements.workflow_roles;
DROP TRIGGER IF EXISTS departments_bump_access_epoch ON entitlements.departments;
DROP TRIGGER IF EXISTS departments_truncate_bumps_access_epoch ON entitlements.departments;
DROP TRIGGER IF EXISTS skills_bump_access_epoch ON entitlements.skills;
DROP TRIGGER IF EXISTS skills_truncate_bumps_access_epoch ON entitlements.skills;
DROP TRIGGER IF EXISTS user_skills_bump_access_epoch ON entitlements.user_skills;
DROP TRIGGER IF EXISTS user_skills_truncate_bumps_access_epoch ON entitlements.user_skills;

DROP TRIGGER IF EXISTS users_bump_access_epoch ON entitlements.users;
DROP TRIGGER IF EXISTS users_active_bumps_access_epoch ON entitlements.users;
DROP TRIGGER IF EXISTS users_truncate_bumps_access_epoch ON entitlements.users;
DROP FUNCTION IF EXISTS entitlements.work_access_for(bigint);
DROP FUNCTION IF EXISTS entitlements.bump_access_epoch();
DROP TABLE IF EXISTS entitlements.work_access_cache;
DROP TABLE IF EXISTS entitlements.access_epoch;
"""


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0004_queue_ids_for_plpgsql")]
    operations = [migrations.RunSQL(CREATE + TRIGGERS, reverse_sql=DROP)]
