"""flowable.mv_caseworker_completions_hourly: completions per caseworker, queue and hour over the last two days.

The dashboard's "completed today" per caseworker counted today's completions from the task table on every page
load: an index-only scan, but of every completion since midnight, so it grew with the day's work. It now sums
the whole hours this view holds and counts only the completions after them live. Two days
cover "today" in any time zone. Refreshed CONCURRENTLY with the other dashboard views (unique index below).
"""
from django.db import migrations

CREATE = """
CREATE MATERIALIZED VIEW flowable.mv_caseworker_completions_hourly AS
SELECT assignee_id,
       queue_name,
       date_trunc('hour', completed_at) AS hour,
       count(*) AS completed
  FROM flowable.workflow_tasks
 WHERE status = 'COMPLETED'
   AND assignee_id IS NOT NULL
   AND completed_at >= date_trunc('hour', now()) - interval '48 hours'
   AND completed_at < date_trunc('hour', now())
 GROUP BY assignee_id, queue_name, date_trunc('hour', completed_at);
CREATE UNIQUE INDEX mv_caseworker_completions_hourly_key
    ON flowable.mv_caseworker_completions_hourly (queue_name, hour, assignee_id);
"""

DROP = "DROP MATERIALIZED VIEW IF EXISTS flowable.mv_caseworker_completions_hourly;"


class Migration(migrations.Migration):
    dependencies = [("tasks", "0012_claim_next_task_one_statement")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
