"""Python handlers the tests register (settings.EXTERNAL_TASK_HANDLER_MODULES), also in a real Celery worker."""

from tasks.external.registry import external_task_handler

HANDLED_TOPIC = "records-check"


@external_task_handler(HANDLED_TOPIC)
def check_records(item):
    if item.variables.get("registry_down"):
        raise ConnectionError("records registry unreachable")
    return {"records_found": len(item.business_key)}
