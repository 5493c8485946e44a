"""NOTIFY auth_changed whenever an API token or a user row changes.

Web workers remember the token lookups of their database connection (entitlements/token_memory.py) and forget
them all when this notification reaches the connection. It is delivered when the changing transaction commits
(PostgreSQL folds repeats within a transaction). Inserting a token needs none: only lookups that found a token
are remembered. A user row is remembered whole, so any change to it notifies, except one that only sets
last_login (a login).

The token memory is gone: entitlements migration 0008 drops these triggers and the function.
"""
from django.db import migrations

CREATE = """
CREATE FUNCTION entitlements.notify_auth_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auth_changed', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER authtoken_token_notify_auth_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON public.authtoken_token
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.notify_auth_changed();
-- A login only sets last_login: not a reason to forget (every session login would empty every worker's memory).
CREATE TRIGGER users_update_notify_auth_changed
    AFTER UPDATE ON entitlements.users
    FOR EACH ROW WHEN ((to_jsonb(OLD) - 'last_login') IS DISTINCT FROM (to_jsonb(NEW) - 'last_login'))
    EXECUTE FUNCTION entitlements.notify_auth_changed();
CREATE TRIGGER users_delete_notify_auth_changed
    AFTER DELETE OR TRUNCATE ON entitlements.users
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.notify_auth_changed();
-- Also for changes applied as a replica (logical replication, pg_restore --disable-triggers keeps these off).
ALTER TABLE public.authtoken_token ENABLE ALWAYS TRIGGER authtoken_token_notify_auth_changed;
ALTER TABLE entitlements.users ENABLE ALWAYS TRIGGER users_update_notify_auth_changed;
ALTER TABLE entitlements.users ENABLE ALWAYS TRIGGER users_delete_notify_auth_changed;
"""

DROP = """
DROP TRIGGER IF EXISTS users_delete_notify_auth_changed ON entitlements.users;
DROP TRIGGER IF EXISTS users_update_notify_auth_changed ON entitlements.users;
DROP TRIGGER IF EXISTS authtoken_token_notify_auth_changed ON public.authtoken_token;
DROP FUNCTION IF EXISTS entitlements.notify_auth_changed();
"""


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0005_work_access_cache"), ("authtoken", "0004_alter_tokenproxy_options")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
