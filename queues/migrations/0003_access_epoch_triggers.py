"""Queue permission changes, and changes to a queue's name or department, bump entitlements.access_epoch.

The claim path remembers each user's workable queues until the access epoch moves (entitlements migration 0005);
these are the queues app's tables the access rule reads. A queue's load, cursor and settings do not move it.
"""
from django.db import migrations

CREATE = """
CREATE TRIGGER queue_user_permissions_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON queues.queue_user_permissions
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER queue_user_permissions_truncate_bumps_access_epoch
    AFTER TRUNCATE ON queues.queue_user_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();

CREATE TRIGGER queue_group_permissions_bump_access_epoch
    AFTER INSERT OR UPDATE OR DELETE ON queues.queue_group_permissions
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER queue_group_permissions_truncate_bumps_access_epoch
    AFTER TRUNCATE ON queues.queue_group_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();

CREATE TRIGGER workflow_queues_bump_access_epoch
    AFTER INSERT OR DELETE ON queues.workflow_queues
    FOR EACH ROW EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER workflow_queues_scope_bumps_access_epoch
    AFTER UPDATE OF queue_name, department_id ON queues.workflow_queues
    FOR EACH ROW WHEN (OLD.queue_name IS DISTINCT FROM NEW.queue_name OR OLD.department_id IS DISTINCT FROM NEW.department_id)
    EXECUTE FUNCTION entitlements.bump_access_epoch();
CREATE TRIGGER workflow_queues_truncate_bumps_access_epoch
    AFTER TRUNCATE ON queues.workflow_queues
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.bump_access_epoch();
"""

DROP = """DROP TRIGGER IF EXISTS queue_user_permissions_bump_access_epoch ON queues.queue_user_permissions;
DROP TRIGGER IF EXISTS queue_user_permissions_truncate_bumps_access_epoch ON queues.queue_user_permissions;
DROP TRIGGER IF EXISTS queue_group_permissions_bump_access_epoch ON queues.queue_group_permissions;
DROP TRIGGER IF EXISTS queue_group_permissions_truncate_bumps_access_epoch ON queues.queue_group_permissions;

DROP TRIGGER IF EXISTS workflow_queues_bump_access_epoch ON queues.workflow_queues;
DROP TRIGGER IF EXISTS workflow_queues_scope_bumps_access_epoch ON queues.workflow_queues;
DROP TRIGGER IF EXISTS workflow_queues_truncate_bumps_access_epoch ON queues.workflow_queues;
"""


class Migration(migrations.Migration):
    dependencies = [("queues", "0002_business_calendars"), ("entitlements", "0005_work_access_cache")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
