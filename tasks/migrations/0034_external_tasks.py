"""External tasks (serviceTask camunda:type="external"): the work items, their append-only history, and the
incidents of items whose retries ran out.

Row-level security: only the system scope reaches the items and their history (and a superuser reads them).
Worker accounts are not a queue's members; tasks/external.py checks their tasks.work_external_tasks permission
and then acts in the system scope, so a request that skips that check finds no row. A trigger NOTIFYs channel
external_tasks with the topic when an item enters the pool, for long-polling workers.

The SQL below is a frozen copy of tasks/sql/<name>.sql at this migration.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

SQL = r"""
-- flowable.external_tasks: a transaction in the system scope reads and writes every row of the external tasks. Worker accounts
-- reach them only so: tasks/external.py checks their tasks.work_external_tasks permission, then acts in the system
-- scope (external tasks belong to no queue, so no queue-keyed policy could admit them); a request that forgets the
-- check finds no row.
ALTER TABLE flowable.external_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS external_tasks_all_for_system ON flowable.external_tasks;
CREATE POLICY external_tasks_all_for_system ON flowable.external_tasks
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- flowable.external_tasks: an active superuser reads every row of the external tasks (entitlements.access.console_shows_every_row);
-- writing goes through tasks/external.py, in the system scope.
ALTER TABLE flowable.external_tasks ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS external_tasks_all_read_by_superuser ON flowable.external_tasks;
CREATE POLICY external_tasks_all_read_by_superuser ON flowable.external_tasks
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- flowable.external_task_history: a transaction in the system scope reads and writes every row of the external task history. Worker accounts
-- reach them only so: tasks/external.py checks their tasks.work_external_tasks permission, then acts in the system
-- scope (external tasks belong to no queue, so no queue-keyed policy could admit them); a request that forgets the
-- check finds no row.
ALTER TABLE flowable.external_task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS external_task_history_all_for_system ON flowable.external_task_history;
CREATE POLICY external_task_history_all_for_system ON flowable.external_task_history
    AS PERMISSIVE FOR ALL TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'system')
    WITH CHECK ((SELECT entitlements.acting_scope()) = 'system');

-- flowable.external_task_history: an active superuser reads every row of the external task history (entitlements.access.console_shows_every_row);
-- writing goes through tasks/external.py, in the system scope.
ALTER TABLE flowable.external_task_history ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS external_task_history_all_read_by_superuser ON flowable.external_task_history;
CREATE POLICY external_task_history_all_read_by_superuser ON flowable.external_task_history
    AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((SELECT entitlements.acting_scope()) = 'superuser');

-- external_task_history_append_only: rows of flowable.external_task_history are never updated or deleted (entitlements.refuse_history_rewrite).
CREATE OR REPLACE TRIGGER external_task_history_append_only
    BEFORE UPDATE OR DELETE ON flowable.external_task_history
    FOR EACH ROW EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.external_task_history ENABLE ALWAYS TRIGGER external_task_history_append_only;

-- external_task_history_no_truncate: flowable.external_task_history is never emptied (TRUNCATE fires no row trigger).
CREATE OR REPLACE TRIGGER external_task_history_no_truncate
    BEFORE TRUNCATE ON flowable.external_task_history
    FOR EACH STATEMENT EXECUTE FUNCTION entitlements.refuse_history_rewrite();
ALTER TABLE flowable.external_task_history ENABLE ALWAYS TRIGGER external_task_history_no_truncate;

-- flowable.external_task_notify: wakes the workers long-polling for an external task's topic (tasks/external.py:
-- ExternalTaskWakeups) when an item enters the pool: created, or handed back (unlocked, retried, failed with a
-- retry wait of zero). NOTIFY is delivered on commit, so a woken worker finds the item committed. The payload is
-- the topic; PostgreSQL folds identical notifications of one transaction into one.
CREATE OR REPLACE FUNCTION flowable.external_task_notify()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('external_tasks', NEW.topic_name);
    RETURN NULL;
END
$$;

-- external_tasks_notify: an external task that is new, or whose lock was released (unlock, failure, retry),
-- wakes the long-polling workers of its topic (flowable.external_task_notify).
CREATE OR REPLACE TRIGGER external_tasks_notify
    AFTER INSERT OR UPDATE OF lock_expires_at, retries, retry_at ON flowable.external_tasks
    FOR EACH ROW WHEN (NEW.status = 'ACTIVE' AND NEW.lock_expires_at IS NULL)
    EXECUTE FUNCTION flowable.external_task_notify();
"""

SQL_REVERSE = """
DROP TRIGGER IF EXISTS external_tasks_notify ON flowable.external_tasks;
DROP FUNCTION IF EXISTS flowable.external_task_notify();
DROP TRIGGER IF EXISTS external_task_history_no_truncate ON flowable.external_task_history;
DROP TRIGGER IF EXISTS external_task_history_append_only ON flowable.external_task_history;
DROP POLICY IF EXISTS external_task_history_all_read_by_superuser ON flowable.external_task_history;
DROP POLICY IF EXISTS external_task_history_all_for_system ON flowable.external_task_history;
DROP POLICY IF EXISTS external_tasks_all_read_by_superuser ON flowable.external_tasks;
DROP POLICY IF EXISTS external_tasks_all_for_system ON flowable.external_tasks;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0033_process_mining_views"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ExternalTask",
            fields=[
                ("external_task_id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "engine_task_id",
                    models.UUIDField(help_text="The engine's id of the serviceTask this row stands for."),
                ),
                ("activity_id", models.CharField(help_text="The serviceTask's BPMN id.", max_length=255)),
                ("name", models.CharField(blank=True, max_length=300)),
                ("topic_name", models.CharField(max_length=200)),
                ("priority", models.IntegerField(default=0)),
                (
                    "status",
                    models.CharField(
                        choices=[("ACTIVE", "Active"), ("COMPLETED", "Completed"), ("CANCELLED", "Cancelled")],
                        default="ACTIVE",
                        max_length=20,
                    ),
                ),
                (
                    "worker_id",
                    models.CharField(
                        blank=True, help_text="The worker that holds (or last held) the lock.", max_length=255
                    ),
                ),
                ("lock_expires_at", models.DateTimeField(blank=True, null=True)),
                (
                    "retries",
                    models.IntegerField(blank=True, help_text="None until a worker reports a failure.", null=True),
                ),
                (
                    "retry_at",
                    models.DateTimeField(blank=True, help_text="After a failure: not fetched before this.", null=True),
                ),
                ("error_message", models.TextField(blank=True)),
                ("error_details", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("completed_at", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "db_table": 'flowable"."external_tasks',
                "ordering": ["-priority", "created_at"],
                "permissions": [
                    ("work_external_tasks", "Can fetch, lock, complete and fail external tasks (worker account)")
                ],
            },
        ),
        migrations.CreateModel(
            name="ExternalTaskHistory",
            fields=[
                ("event_id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "event_type",
                    models.CharField(
                        choices=[
                            ("CREATED", "Created"),
                            ("LOCKED", "Locked"),
                            ("COMPLETED", "Completed"),
                            ("FAILED", "Failed"),
                            ("BPMN_ERROR", "Bpmn Error"),
                            ("LOCK_EXTENDED", "Lock Extended"),
                            ("UNLOCKED", "Unlocked"),
                            ("RETRIES_SET", "Retries Set"),
                            ("CANCELLED", "Cancelled"),
                            ("REFUSED", "Refused"),
                        ],
                        max_length=20,
                    ),
                ),
                ("worker_id", models.CharField(blank=True, max_length=255)),
                ("new_values", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "verbose_name_plural": "external task history",
                "db_table": 'flowable"."external_task_history',
                "ordering": ["created_at", "event_id"],
            },
        ),
        migrations.RemoveConstraint(
            model_name="processincident",
            name="process_incident_kind_valid",
        ),
        migrations.RemoveConstraint(
            model_name="processincident",
            name="process_incident_step_valid",
        ),
        # Django drops a partial unique index by its bare name, which misses our schema: drop it qualified.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="processincident",
                    name="process_incident_one_open",
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "DROP INDEX IF EXISTS flowable.process_incident_one_open",
                    "CREATE UNIQUE INDEX process_incident_one_open ON flowable.process_incidents "
                    "(process_instance_id) WHERE resolved_at IS NULL",
                ),
            ],
        ),
        migrations.AlterField(
            model_name="processincident",
            name="kind",
            field=models.CharField(
                choices=[
                    ("SCRIPT_LIMIT", "script stopped at its CPU or memory limit"),
                    ("ENGINE_ERROR", "engine error"),
                    ("EXTERNAL_TASK_FAILED", "external task failed, no retries left"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="processincident",
            name="step",
            field=models.CharField(
                choices=[("FIRE_TIMERS", "fire due timers"), ("EXTERNAL_TASK", "external task")], max_length=20
            ),
        ),
        migrations.AddField(
            model_name="externaltask",
            name="locked_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="The worker account that holds (or last held) the lock.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="externaltask",
            name="process_instance",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="external_tasks",
                to="tasks.processinstance",
            ),
        ),
        migrations.AddField(
            model_name="processincident",
            name="external_task",
            field=models.ForeignKey(
                blank=True,
                help_text="Step EXTERNAL_TASK: the work item whose retries ran out.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="incidents",
                to="tasks.externaltask",
            ),
        ),
        migrations.AddConstraint(
            model_name="processincident",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__in", ["SCRIPT_LIMIT", "ENGINE_ERROR", "EXTERNAL_TASK_FAILED"])),
                name="process_incident_kind_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="processincident",
            constraint=models.CheckConstraint(
                condition=models.Q(("step__in", ["FIRE_TIMERS", "EXTERNAL_TASK"])), name="process_incident_step_valid"
            ),
        ),
        migrations.AddConstraint(
            model_name="processincident",
            constraint=models.UniqueConstraint(
                condition=models.Q(("external_task__isnull", True), ("resolved_at__isnull", True)),
                fields=("process_instance",),
                name="process_incident_one_open",
            ),
        ),
        migrations.AddConstraint(
            model_name="processincident",
            constraint=models.UniqueConstraint(
                condition=models.Q(("external_task__isnull", False), ("resolved_at__isnull", True)),
                fields=("external_task",),
                name="process_incident_one_open_per_external_task",
            ),
        ),
        migrations.AddConstraint(
            model_name="processincident",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("external_task__isnull", False), ("step", "EXTERNAL_TASK")),
                    models.Q(models.Q(("step", "EXTERNAL_TASK"), _negated=True), ("external_task__isnull", True)),
                    _connector="OR",
                ),
                name="process_incident_external_task_step",
            ),
        ),
        migrations.AddField(
            model_name="externaltaskhistory",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="externaltaskhistory",
            name="external_task",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="history",
                to="tasks.externaltask",
            ),
        ),
        migrations.AddIndex(
            model_name="externaltask",
            index=models.Index(
                models.F("topic_name"),
                models.OrderBy(models.F("priority"), descending=True),
                models.F("created_at"),
                models.F("external_task_id"),
                condition=models.Q(("status", "ACTIVE")),
                name="idx_external_tasks_fetch",
            ),
        ),
        migrations.AddIndex(
            model_name="externaltask",
            index=models.Index(fields=["process_instance", "status"], name="idx_external_tasks_instance"),
        ),
        migrations.AddConstraint(
            model_name="externaltask",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["ACTIVE", "COMPLETED", "CANCELLED"])),
                name="external_task_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="externaltask",
            constraint=models.CheckConstraint(
                condition=models.Q(("retries__isnull", True), ("retries__gte", 0), _connector="OR"),
                name="external_task_retries",
            ),
        ),
        migrations.AddConstraint(
            model_name="externaltask",
            constraint=models.UniqueConstraint(fields=("engine_task_id",), name="external_task_engine_task_unique"),
        ),
        migrations.AddIndex(
            model_name="externaltaskhistory",
            index=models.Index(fields=["external_task", "created_at"], name="idx_external_task_history_task"),
        ),
        migrations.AddIndex(
            model_name="externaltaskhistory",
            index=models.Index(fields=["actor", "created_at"], name="idx_external_task_history_actor"),
        ),
        migrations.AddConstraint(
            model_name="externaltaskhistory",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "event_type__in",
                        [
                            "CREATED",
                            "LOCKED",
                            "COMPLETED",
                            "FAILED",
                            "BPMN_ERROR",
                            "LOCK_EXTENDED",
                            "UNLOCKED",
                            "RETRIES_SET",
                            "CANCELLED",
                            "REFUSED",
                        ],
                    )
                ),
                name="external_task_event_type_valid",
            ),
        ),
        migrations.RunSQL(SQL, SQL_REVERSE),
    ]
