"""Staffing what-if runs (tasks/forecast/whatif_services.py): flowable.whatif_runs, with row-level security for the
supervisors of the run's queue and the system (frozen copies of tasks/sql/whatif_runs_*.sql)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


POLICIES = """
-- flowable.whatif_runs: the system scope (the what-if job) reads and writes every run.
ALTER TABLE flowable.whatif_runs ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS whatif_runs_all_for_system ON flowable.whatif_runs;
CREATE POLICY whatif_runs_all_for_system ON flowable.whatif_runs
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- flowable.whatif_runs: an active superuser reads every run, as they read every queue's figures.
ALTER TABLE flowable.whatif_runs ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS whatif_runs_all_read_by_superuser ON flowable.whatif_runs;
CREATE POLICY whatif_runs_all_read_by_superuser ON flowable.whatif_runs
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- flowable.whatif_runs: the acting user reads and asks for the what-if runs of the queues they supervise now (the
-- console's staffing what-if page; tasks/forecast/whatif_services.py checks the same before writing).
ALTER TABLE flowable.whatif_runs ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS whatif_runs_of_supervised_queues ON flowable.whatif_runs;
CREATE POLICY whatif_runs_of_supervised_queues ON flowable.whatif_runs
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING (queue_name = ANY ((SELECT entitlements.acting_supervised_queue_names())::text[]))
    WITH CHECK (queue_name = ANY ((SELECT entitlements.acting_supervised_queue_names())::text[]));
"""

DROP_POLICIES = """
DROP POLICY IF EXISTS whatif_runs_all_for_system ON flowable.whatif_runs;
DROP POLICY IF EXISTS whatif_runs_all_read_by_superuser ON flowable.whatif_runs;
DROP POLICY IF EXISTS whatif_runs_of_supervised_queues ON flowable.whatif_runs;
ALTER TABLE flowable.whatif_runs DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0045_task_history_routing'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='WhatIfRun',
            fields=[
                ('run_id', models.BigAutoField(primary_key=True, serialize=False)),
                ('queue_name', models.CharField(max_length=100)),
                ('parameters', models.JSONField(default=dict)),
                ('status', models.CharField(choices=[('QUEUED', 'Queued'), ('RUNNING', 'Running'), ('DONE', 'Done'), ('FAILED', 'Failed')], default='QUEUED', max_length=10)),
                ('progress', models.PositiveSmallIntegerField(default=0, help_text='Replications done, in percent.')),
                ('result', models.JSONField(blank=True, null=True)),
                ('error', models.CharField(blank=True, max_length=500)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('requested_by', models.ForeignKey(db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'flowable"."whatif_runs',
                'indexes': [models.Index(fields=['queue_name', '-created_at'], name='idx_whatif_runs_queue')],
                'constraints': [models.CheckConstraint(condition=models.Q(('status__in', ['QUEUED', 'RUNNING', 'DONE', 'FAILED'])), name='whatif_run_status_valid'), models.CheckConstraint(condition=models.Q(('progress__lte', 100)), name='whatif_run_progress_percent')],
            },
        ),
        migrations.RunSQL(POLICIES, reverse_sql=DROP_POLICIES),
    ]
