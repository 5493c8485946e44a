"""task_history.via_account_id: a partial index (rows naming an integration account only) replaces the full one.

Django's schema editor cannot find or drop indexes of a schema-qualified table by name (its introspection and
its DROP INDEX look outside the flowable schema), so the database side is written out; the state is Django's.
Built CONCURRENTLY (so the migration is not atomic): on a large history table a plain CREATE INDEX would block
every claim, which appends history, for as long as the build takes. The new index exists before the old one is
dropped, so lookups by account are never without one.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FORWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS task_history_via_account ON flowable.task_history (via_account_id)"
    " WHERE via_account_id IS NOT NULL",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.task_history_via_account_id_d10d9c57",
]
BACKWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS task_history_via_account_id_d10d9c57 ON flowable.task_history"
    " (via_account_id)",
    "DROP INDEX CONCURRENTLY IF EXISTS flowable.task_history_via_account",
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tasks", "0016_claim_next_task_skips_busy_queues"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="taskhistory",
                    name="via_account",
                    field=models.ForeignKey(blank=True, db_index=False, help_text="The integration account that acted on the actor's behalf (X-On-Behalf-Of), if any.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL),
                ),
                migrations.AddIndex(
                    model_name="taskhistory",
                    index=models.Index(condition=models.Q(("via_account__isnull", False)), fields=["via_account"], name="task_history_via_account"),
                ),
            ],
            database_operations=[migrations.RunSQL(FORWARD, reverse_sql=BACKWARD)],
        ),
    ]
