"""External tasks: serviceTasks with camunda:type="external" that workers fetch, lock and complete by topic.

items.py keeps the work items in step with the engine (no engine calls); services.py is what workers call;
wakeups.py wakes long-polling fetches on PostgreSQL NOTIFY; handlers.py runs Python handlers on Celery; api.py is
/api/workflow/external-tasks/.
"""
