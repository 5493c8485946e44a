"""SLA-risk forecasts (tasks/forecast/): the side table flowable.task_risks, and the SLA_RISK alert kind.

A new table rather than columns of workflow_tasks: the forecast job rewrites every active task's figures every five
minutes, which on the task rows would lock them against claim-next (SKIP LOCKED passes them by) and churn the hot
table. No foreign key (archival moves tasks by SQL); the job deletes forecasts of tasks no longer active.
Row-level security as on the tasks (docs/row-level-security.md): a user reads the forecasts of the queues they may
view; only the system scope writes.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
import tasks.models
from django.db import migrations, models


POLICIES = """
-- flowable.task_risks: a transaction in the system scope (the forecast job and command, an on-demand forecast once
-- tasks/forecast/services.py checked the caller may see the task) reads and writes every forecast.
ALTER TABLE flowable.task_risks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_risks_all_for_system ON flowable.task_risks;
CREATE POLICY task_risks_all_for_system ON flowable.task_risks
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- flowable.task_risks: an active superuser reads every forecast, as they read every task.
ALTER TABLE flowable.task_risks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_risks_all_read_by_superuser ON flowable.task_risks;
CREATE POLICY task_risks_all_read_by_superuser ON flowable.task_risks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- flowable.task_risks: the acting user reads the forecasts of the queues they may view now, as they read those
-- queues' tasks (workflow_tasks_in_acting_queues); only the system writes forecasts.
ALTER TABLE flowable.task_risks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS task_risks_in_acting_queues ON flowable.task_risks;
CREATE POLICY task_risks_in_acting_queues ON flowable.task_risks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING (queue_name = ANY ((SELECT entitlements.acting_queue_names())::text[]));
"""

DROP_POLICIES = """
DROP POLICY IF EXISTS task_risks_all_for_system ON flowable.task_risks;
DROP POLICY IF EXISTS task_risks_all_read_by_superuser ON flowable.task_risks;
DROP POLICY IF EXISTS task_risks_in_acting_queues ON flowable.task_risks;
ALTER TABLE flowable.task_risks DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('tasks', '0030_database_health'),
    ]

    operations = [
        migrations.CreateModel(
            name='TaskRisk',
            fields=[
                ('task', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='risk', serialize=False, to='tasks.workflowtask')),
                ('queue_name', models.CharField(max_length=100)),
                ('breach_probability', models.FloatField()),
                ('expected_completion_at', models.DateTimeField(null=True)),
                ('computed_at', models.DateTimeField()),
            ],
            options={
                'db_table': 'flowable"."task_risks',
            },
        ),
        migrations.RemoveConstraint(
            model_name='alert',
            name='alert_kind_valid',
        ),
        migrations.RemoveConstraint(
            model_name='alertrule',
            name='alert_rule_kind_valid',
        ),
        migrations.AlterField(
            model_name='alert',
            name='kind',
            field=models.CharField(choices=[('SLA_BREACH', 'SLA breach'), ('CAPACITY', 'Queue over capacity'), ('SLA_RISK', 'SLA at risk (forecast)')], max_length=20),
        ),
        migrations.AlterField(
            model_name='alertchannel',
            name='alert_kinds',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.CharField(choices=[('SLA_BREACH', 'SLA breach'), ('CAPACITY', 'Queue over capacity'), ('SLA_RISK', 'SLA at risk (forecast)')], max_length=20), blank=True, default=tasks.models.all_alert_kinds, help_text='The kinds of alert this channel receives.', size=None),
        ),
        migrations.AlterField(
            model_name='alertrule',
            name='kind',
            field=models.CharField(choices=[('SLA_BREACH', 'SLA breach'), ('CAPACITY', 'Queue over capacity'), ('SLA_RISK', 'SLA at risk (forecast)')], max_length=20, primary_key=True, serialize=False),
        ),
        migrations.AddConstraint(
            model_name='alert',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['SLA_BREACH', 'CAPACITY', 'SLA_RISK'])), name='alert_kind_valid'),
        ),
        migrations.AddConstraint(
            model_name='alertrule',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['SLA_BREACH', 'CAPACITY', 'SLA_RISK'])), name='alert_rule_kind_valid'),
        ),
        migrations.RunSQL(POLICIES, reverse_sql=DROP_POLICIES),
    ]
