"""The people a case is about or hears from (subject, complainant, witness), with their personal fields.

Its own migration: the encrypted version of these fields (and the keyed-hash lookup column) replaces this one.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('cases', '0003_mapping_hop_queues_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='CaseSubject',
            fields=[
                ('subject_id', models.BigAutoField(primary_key=True, serialize=False)),
                ('role', models.CharField(choices=[('SUBJECT', 'Subject'), ('COMPLAINANT', 'Complainant'), ('WITNESS', 'Witness')], default='SUBJECT', max_length=20)),
                ('full_name', models.CharField(max_length=300)),
                ('email', models.CharField(blank=True, max_length=254)),
                ('phone', models.CharField(blank=True, max_length=50)),
                ('date_of_birth', models.DateField(blank=True, null=True)),
                ('notes', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('case', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='subjects', to='cases.case')),
            ],
            options={
                'db_table': 'onecms"."case_subjects',
                'ordering': ['case_id', 'subject_id'],
                'constraints': [models.CheckConstraint(condition=models.Q(('role__in', ['SUBJECT', 'COMPLAINANT', 'WITNESS'])), name='case_subject_role_valid')],
            },
        ),
    ]
