"""The queues a case's routing history reached are GIN-indexed, so the supervisor console's case scope starts from
the mappings whose hops reached a supervised queue instead of testing every case.

Django drops an index by its bare name, which misses an index in the `onecms` schema, so the index is written out
with the schema (the state change stays Django's) and the migration reverses cleanly. The expression must stay the
one cases/selectors.py filters on (jsonb_path_query_array(routing_history, '$[*].to_queue') ?| queues), or the
planner cannot use the index.
"""

import django.contrib.postgres.indexes
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('cases', '0002_case_number_sequence'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "CREATE INDEX IF NOT EXISTS idx_case_mapping_hop_queues ON onecms.case_workflow_mapping "
                    "USING gin (jsonb_path_query_array(routing_history, '$[*].to_queue'))",
                    reverse_sql="DROP INDEX IF EXISTS onecms.idx_case_mapping_hop_queues",
                ),
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name='caseworkflowmapping',
                    index=django.contrib.postgres.indexes.GinIndex(models.Func(models.F('routing_history'), models.Value('$[*].to_queue'), function='jsonb_path_query_array', output_field=models.JSONField()), name='idx_case_mapping_hop_queues'),
                ),
            ],
        ),
    ]
