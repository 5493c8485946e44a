"""Queues may age their tasks' priority and run an express lane (flowable.claim_next_task, tasks/sla/aging.py)."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('entitlements', '0017_month_partitions_ensure'),
        ('queues', '0003_access_epoch_triggers'),
    ]

    operations = [
        migrations.AddField(
            model_name='workflowqueue',
            name='aging_enabled',
            field=models.BooleanField(db_default=False, default=False, help_text="Open tasks' effective priority rises with their wait in business hours and their SLA breach risk, times the priority weight (recomputed by the SLA-risk job)."),
        ),
        migrations.AddField(
            model_name='workflowqueue',
            name='express_credit',
            field=models.PositiveSmallIntegerField(db_default=100, default=100, editable=False, help_text="The express lane's allowance now, in hundredths of a claim (a claim needs 100)."),
        ),
        migrations.AddField(
            model_name='workflowqueue',
            name='express_share_percent',
            field=models.PositiveSmallIntegerField(db_default=50, default=50, help_text="Most percent of claim-next's claims the express lane takes while other tasks wait.", validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(100)]),
        ),
        migrations.AddField(
            model_name='workflowqueue',
            name='express_threshold',
            field=models.IntegerField(blank=True, help_text='Express lane: open tasks of at least this effective priority are claimed first, up to the express share of claims. Empty: no express lane.', null=True, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(100)]),
        ),
        migrations.AlterField(
            model_name='workflowqueue',
            name='priority_weight',
            field=models.PositiveIntegerField(default=1, help_text="Weight of this queue under priority-weighted routing, and of its tasks' aging when aging is on."),
        ),
        migrations.AddConstraint(
            model_name='workflowqueue',
            constraint=models.CheckConstraint(condition=models.Q(('express_threshold__isnull', True), models.Q(('express_threshold__gte', 1), ('express_threshold__lte', 100)), _connector='OR'), name='queue_express_threshold_in_range'),
        ),
        migrations.AddConstraint(
            model_name='workflowqueue',
            constraint=models.CheckConstraint(condition=models.Q(('express_share_percent__gte', 1), ('express_share_percent__lte', 100)), name='queue_express_share_in_range'),
        ),
        migrations.AddConstraint(
            model_name='workflowqueue',
            constraint=models.CheckConstraint(condition=models.Q(('express_credit__gte', 0), ('express_credit__lte', 100)), name='queue_express_credit_in_range'),
        ),
    ]
