-- workflow_queues_scope_bumps_access_epoch: a change of a queue's name or department moves the access epoch (no
-- other column does).
CREATE OR REPLACE TRIGGER workflow_queues_scope_bumps_access_epoch
    AFTER UPDATE OF queue_name, department_id ON queues.workflow_queues
    FOR EACH ROW WHEN (OLD.queue_name IS DISTINCT FROM NEW.queue_name OR OLD.department_id IS DISTINCT FROM NEW.department_id)
    EXECUTE FUNCTION entitlements.bump_access_epoch();
