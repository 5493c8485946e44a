"""Dashboard views and the beat schedule.

- flowable.v_queue_performance_dashboard: the seed's view, live.
- flowable.mv_queue_performance and flowable.mv_queue_throughput_hourly: the heavier figures, materialized and
  refreshed CONCURRENTLY by refresh_dashboards (each has the unique index that requires); page loads read them.
- flowable.dashboard_refreshes: when they were last refreshed, shown on the dashboard.
- django-celery-beat schedules for every maintenance job, editable in admin (Periodic tasks).
"""
from django.db import migrations

VIEWS = """
CREATE VIEW flowable.v_queue_performance_dashboard AS
SELECT q.queue_name,
       q.current_load,
       q.max_capacity,
       count(t.task_id) FILTER (WHERE t.status = 'OPEN') AS open_tasks,
       count(t.task_id) FILTER (WHERE t.status = 'CLAIMED') AS claimed_tasks,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.escalation_level > 0) AS escalated_tasks,
       avg(EXTRACT(EPOCH FROM (CURRENT_TIMESTAMP - t.created_at)) / 3600) AS avg_age_hours
  FROM queues.workflow_queues q
  LEFT JOIN flowable.workflow_tasks t ON q.queue_name = t.queue_name AND t.status IN ('OPEN', 'CLAIMED')
 GROUP BY q.queue_name, q.current_load, q.max_capacity;

CREATE MATERIALIZED VIEW flowable.mv_queue_performance AS
SELECT q.queue_name,
       count(t.task_id) FILTER (WHERE t.status = 'OPEN') AS open_tasks,
       count(t.task_id) FILTER (WHERE t.status = 'CLAIMED') AS claimed_tasks,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.escalation_level > 0) AS escalated_tasks,
       count(t.task_id) FILTER (WHERE t.status IN ('OPEN', 'CLAIMED') AND t.due_date < now()) AS overdue_tasks,
       min(t.created_at) FILTER (WHERE t.status = 'OPEN') AS oldest_open_at,
       avg(EXTRACT(EPOCH FROM (now() - t.created_at))) FILTER (WHERE t.status = 'OPEN') AS avg_open_age_seconds,
       now() AS computed_at
  FROM queues.workflow_queues q
  LEFT JOIN flowable.workflow_tasks t ON q.queue_name = t.queue_name AND t.status IN ('OPEN', 'CLAIMED')
 GROUP BY q.queue_name;
CREATE UNIQUE INDEX mv_queue_performance_queue ON flowable.mv_queue_performance (queue_name);

CREATE MATERIALIZED VIEW flowable.mv_queue_throughput_hourly AS
SELECT queue_name,
       date_trunc('hour', completed_at) AS hour,
       count(*) AS completed,
       count(*) FILTER (WHERE due_date IS NULL OR completed_at <= due_date) AS completed_within_sla,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (completed_at - created_at))) AS median_seconds
  FROM flowable.workflow_tasks
 WHERE status = 'COMPLETED' AND completed_at >= now() - interval '30 days'
 GROUP BY queue_name, date_trunc('hour', completed_at);
CREATE UNIQUE INDEX mv_queue_throughput_hourly_key ON flowable.mv_queue_throughput_hourly (queue_name, hour);

CREATE TABLE flowable.dashboard_refreshes (
    refresh_id bigserial PRIMARY KEY,
    refreshed_at timestamptz NOT NULL
);
"""

DROP_VIEWS = """
DROP TABLE IF EXISTS flowable.dashboard_refreshes;
DROP MATERIALIZED VIEW IF EXISTS flowable.mv_queue_throughput_hourly;
DROP MATERIALIZED VIEW IF EXISTS flowable.mv_queue_performance;
DROP VIEW IF EXISTS flowable.v_queue_performance_dashboard;
"""

# (name, task, every, period) for intervals; (name, task, crontab fields) for crontabs.
INTERVAL_JOBS = [
    ("SLA check", "workflow.sla_check", 5, "minutes"),
    ("Queue capacity monitor", "workflow.capacity_monitor", 1, "minutes"),
    ("Dashboard refresh", "workflow.refresh_dashboards", 15, "minutes"),
    ("Timer events", "workflow.fire_timers", 1, "minutes"),
]
CRONTAB_JOBS = [
    ("Queue statistics", "workflow.queue_statistics", {"minute": "5", "hour": "0"}),
    ("Archive completed tasks", "workflow.archive_completed_tasks", {"minute": "30", "hour": "2", "day_of_week": "0"}),
    ("Rebalance queue loads", "workflow.rebalance_queues", {"minute": "0", "hour": "3", "day_of_week": "0"}),
]


def create_schedules(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, every, period in INTERVAL_JOBS:
        interval, _ = interval_model.objects.get_or_create(every=every, period=period)
        task_model.objects.get_or_create(name=name, defaults={"task": task, "interval": interval})
    for name, task, fields in CRONTAB_JOBS:
        crontab, _ = crontab_model.objects.get_or_create(**{"day_of_week": "*", "day_of_month": "*",
                                                             "month_of_year": "*", **fields})
        task_model.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})


def remove_schedules(apps, schema_editor):
    names = [job[0] for job in INTERVAL_JOBS + CRONTAB_JOBS]
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0007_claim_for_user_function"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [
        migrations.RunSQL(VIEWS, reverse_sql=DROP_VIEWS),
        migrations.RunPython(create_schedules, remove_schedules),
    ]
