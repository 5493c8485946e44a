"""Retention: a case type on each case, retention policies per type, tombstones of deleted cases, the beat job.

- cases.case_type: the process key the case was opened with, filled in for existing cases from their first
  workflow mapping.
- cases.redacted_at: set when a policy redacted the case, so a rerun does not redact it again.
- idx_cases_closed_by_type: the closed cases of a type by closure time. Written with its schema (Django drops an
  index by its bare name, which misses the onecms schema), as migration 0003 does.
- The "Apply retention policies" schedule (django-celery-beat, editable in admin), daily.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

FILL_CASE_TYPES = """
UPDATE onecms.cases c
   SET case_type = first.workflow_type
  FROM (SELECT DISTINCT ON (case_id) case_id, workflow_type
          FROM onecms.case_workflow_mapping ORDER BY case_id, mapping_id) first
 WHERE first.case_id = c.case_id
"""

JOB = ("Apply retention policies", "cases.apply_retention", {"minute": "15", "hour": "4"})


def create_schedule(apps, schema_editor):
    name, task, fields = JOB
    crontab, _ = apps.get_model("django_celery_beat", "CrontabSchedule").objects.get_or_create(
        **{"day_of_week": "*", "day_of_month": "*", "month_of_year": "*", **fields}
    )
    apps.get_model("django_celery_beat", "PeriodicTask").objects.get_or_create(
        name=name, defaults={"task": task, "crontab": crontab}
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=JOB[0]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('cases', '0005_case_events_and_routing_hops_append_only'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.AddField(
            model_name='case',
            name='case_type',
            field=models.CharField(blank=True, db_default='', help_text='The process key the case was opened with; retention policies apply per case type.', max_length=200),
        ),
        migrations.AddField(
            model_name='case',
            name='redacted_at',
            field=models.DateTimeField(blank=True, help_text="When a retention policy redacted the case's personal data and free text.", null=True),
        ),
        migrations.RunSQL(FILL_CASE_TYPES, reverse_sql=migrations.RunSQL.noop),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "CREATE INDEX IF NOT EXISTS idx_cases_closed_by_type ON onecms.cases (case_type, closed_at) "
                    "WHERE status = 'CLOSED'",
                    reverse_sql="DROP INDEX IF EXISTS onecms.idx_cases_closed_by_type",
                ),
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name='case',
                    index=models.Index(condition=models.Q(('status', 'CLOSED')), fields=['case_type', 'closed_at'], name='idx_cases_closed_by_type'),
                ),
            ],
        ),
        migrations.CreateModel(
            name='RetentionPolicy',
            fields=[
                ('policy_id', models.BigAutoField(primary_key=True, serialize=False)),
                ('case_type', models.CharField(help_text='A process key cases are opened with.', max_length=200, unique=True)),
                ('keep_years_after_closure', models.PositiveSmallIntegerField(help_text='Whole years a closed case is kept after its closure (1 to 100).')),
                ('action', models.CharField(choices=[('REDACT', 'Redact personal data and free text, keep the skeleton'), ('DELETE', 'Delete the case and its workflow, leave a tombstone')], default='REDACT', max_length=10)),
                ('enabled', models.BooleanField(default=True)),
                ('description', models.TextField(blank=True, help_text='Why this period: the rule or agreement it follows.')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name_plural': 'retention policies',
                'db_table': 'onecms"."retention_policies',
                'ordering': ['case_type'],
                'constraints': [
                    models.CheckConstraint(condition=models.Q(('action__in', ['REDACT', 'DELETE'])), name='retention_action_valid'),
                    models.CheckConstraint(condition=models.Q(('keep_years_after_closure__gte', 1), ('keep_years_after_closure__lte', 100)), name='retention_years_in_range'),
                ],
            },
        ),
        migrations.CreateModel(
            name='CaseTombstone',
            fields=[
                ('tombstone_id', models.BigAutoField(primary_key=True, serialize=False)),
                ('case_id', models.BigIntegerField(help_text="The deleted case's id.", unique=True)),
                ('case_number', models.CharField(max_length=40, unique=True)),
                ('case_type', models.CharField(blank=True, max_length=200)),
                ('status', models.CharField(max_length=20)),
                ('opened_at', models.DateTimeField()),
                ('closed_at', models.DateTimeField(null=True)),
                ('deleted_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('policy_terms', models.JSONField(default=dict, help_text='The policy as applied: case_type, keep_years_after_closure, action.')),
                ('deleted_rows', models.JSONField(default=dict, help_text='Rows deleted with the case, per table.')),
                ('policy', models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='tombstones', to='cases.retentionpolicy')),
            ],
            options={
                'db_table': 'onecms"."case_tombstones',
                'ordering': ['-deleted_at', '-tombstone_id'],
            },
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
