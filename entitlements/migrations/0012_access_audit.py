"""The access audit: who read which case or task detail, and when, in entitlements.access_audit, by month.

The table is made in SQL: Django's schema editor cannot declare PARTITION BY RANGE. The model state below is the
same table as Django sees it (tests/entitlements/test_access_audit_partitions.py compares the two): its key is
(access_id, read_at), because a key of a partitioned table must hold the partition key, and access_id is an
identity column the database fills. A DEFAULT partition catches rows of a month that has no partition yet.

entitlements.ensure_access_audit_partitions (entitlements/sql/ensure_access_audit_partitions.sql) creates the month
partitions: here from this month to two months ahead, then every day from the beat job scheduled below (and
`manage.py ensure_access_audit_partitions`). It is SECURITY DEFINER, because the application role has no DDL.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

TABLE = """
CREATE TABLE entitlements.access_audit (
    access_id      bigint        GENERATED ALWAYS AS IDENTITY,
    read_at        timestamptz   NOT NULL,
    object_type    varchar(10)   NOT NULL,
    object_id      bigint        NOT NULL,
    object_label   varchar(200)  NOT NULL,
    channel        varchar(10)   NOT NULL,
    outcome        varchar(10)   NOT NULL,
    method         varchar(10)   NOT NULL,
    path           varchar(500)  NOT NULL,
    remote_addr    inet,
    reader_id      bigint,
    via_account_id bigint,
    CONSTRAINT access_audit_object_type_valid CHECK (object_type IN ('case', 'task')),
    CONSTRAINT access_audit_channel_valid CHECK (channel IN ('page', 'api', 'admin')),
    CONSTRAINT access_audit_outcome_valid CHECK (outcome IN ('granted', 'denied')),
    PRIMARY KEY (access_id, read_at)
) PARTITION BY RANGE (read_at);
CREATE TABLE entitlements.access_audit_default PARTITION OF entitlements.access_audit DEFAULT;
CREATE INDEX access_audit_object ON entitlements.access_audit (object_type, object_id, read_at DESC);
CREATE INDEX access_audit_reader ON entitlements.access_audit (reader_id, read_at DESC);
"""

DROP_TABLE = "DROP TABLE IF EXISTS entitlements.access_audit CASCADE;"

ENSURE_PARTITIONS = """
-- entitlements.ensure_access_audit_partitions: the month partitions of entitlements.access_audit (UTC months) from
-- this month to p_months_ahead months ahead, created where missing; returns the names of those it created, so a
-- second call creates nothing. The daily beat job and `manage.py ensure_access_audit_partitions` call it.
--
-- SECURITY DEFINER: it runs as its owner (the role that ran the migrations), because the application role that
-- calls it holds no DDL rights; search_path is pinned (pg_temp last, so no temporary object of the caller's can
-- stand in for ours) and EXECUTE is revoked from PUBLIC. It creates partitions of this one table, for at most 25
-- months from now: a caller cannot make it create anything else.
--
-- Rows dated in a month that has no partition yet land in the DEFAULT partition, and PostgreSQL refuses to create a
-- month partition while the DEFAULT holds rows of that month. Such rows (the job did not run for months) are moved
-- without UPDATE or DELETE, so the table's append-only rules need no exception: the DEFAULT partition is detached,
-- the month partitions and a new DEFAULT are created, the detached rows are inserted again through the parent (each
-- lands in its month, keeping its access_id) and the detached table is dropped, all in the caller's transaction.
CREATE OR REPLACE FUNCTION entitlements.ensure_access_audit_partitions(p_months_ahead integer DEFAULT 2)
RETURNS SETOF text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, entitlements, pg_temp
-- Creating a partition locks the parent table: wait briefly behind the requests writing to it, then give up (the
-- job retries; partitions are made months ahead).
SET lock_timeout = '5s'
AS $$
DECLARE
    v_this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    v_starts timestamp[] := '{}';
    v_start timestamp;
    v_name text;
    v_strays boolean;
BEGIN
    IF p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > 24 THEN
        RAISE EXCEPTION 'months ahead must be from 0 to 24, not %', p_months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 0 .. p_months_ahead LOOP
        v_start := v_this_month + make_interval(months => i);
        IF to_regclass(format('entitlements.access_audit_p%s', to_char(v_start, 'YYYY_MM'))) IS NULL THEN
            v_starts := v_starts || v_start;
        END IF;
    END LOOP;
    IF cardinality(v_starts) = 0 THEN
        RETURN;  -- the usual day: nothing to create, nothing locked
    END IF;

    -- One creator at a time (the lock conflicts with itself, not with readers); then look again.
    LOCK TABLE entitlements.access_audit IN SHARE ROW EXCLUSIVE MODE;
    SELECT coalesce(array_agg(s ORDER BY s), '{}') INTO v_starts
      FROM unnest(v_starts) AS s
     WHERE to_regclass(format('entitlements.access_audit_p%s', to_char(s, 'YYYY_MM'))) IS NULL;
    IF cardinality(v_starts) = 0 THEN
        RETURN;
    END IF;

    SELECT EXISTS (
        SELECT 1 FROM entitlements.access_audit_default d, unnest(v_starts) AS s
         WHERE d.read_at >= s AT TIME ZONE 'UTC' AND d.read_at < (s + interval '1 month') AT TIME ZONE 'UTC'
    ) INTO v_strays;
    IF v_strays THEN
        ALTER TABLE entitlements.access_audit DETACH PARTITION entitlements.access_audit_default;
        ALTER TABLE entitlements.access_audit_default RENAME TO access_audit_default_detached;
    END IF;

    FOREACH v_start IN ARRAY v_starts LOOP
        v_name := format('access_audit_p%s', to_char(v_start, 'YYYY_MM'));
        -- Bounds written as UTC literals: they read the same whatever the session's TimeZone and DateStyle.
        EXECUTE format(
            'CREATE TABLE entitlements.%I PARTITION OF entitlements.access_audit FOR VALUES FROM (%L) TO (%L)',
            v_name, to_char(v_start, 'YYYY-MM-DD') || ' 00:00+00',
            to_char(v_start + interval '1 month', 'YYYY-MM-DD') || ' 00:00+00'
        );
        RETURN NEXT 'entitlements.' || v_name;
    END LOOP;

    IF v_strays THEN
        CREATE TABLE entitlements.access_audit_default PARTITION OF entitlements.access_audit DEFAULT;
        INSERT INTO entitlements.access_audit OVERRIDING SYSTEM VALUE
        SELECT * FROM entitlements.access_audit_default_detached;
        DROP TABLE entitlements.access_audit_default_detached;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION entitlements.ensure_access_audit_partitions(integer) FROM PUBLIC;
"""

DROP_ENSURE_PARTITIONS = "DROP FUNCTION IF EXISTS entitlements.ensure_access_audit_partitions(integer);"

JOB_NAME = "Access audit partitions"
JOB_TASK = "entitlements.ensure_access_audit_partitions"
JOB_CRONTAB = {"minute": "10", "hour": "0", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}


def create_schedule(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = crontab_model.objects.get_or_create(**JOB_CRONTAB)
    task_model.objects.get_or_create(name=JOB_NAME, defaults={"task": JOB_TASK, "crontab": crontab})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=JOB_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("entitlements", "0011_history_append_only_for_every_role"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(TABLE, reverse_sql=DROP_TABLE),
                migrations.RunSQL(ENSURE_PARTITIONS, reverse_sql=DROP_ENSURE_PARTITIONS),
                migrations.RunSQL("SELECT entitlements.ensure_access_audit_partitions(2);", migrations.RunSQL.noop),
            ],
            state_operations=[
                migrations.CreateModel(
                    name="AccessAuditEntry",
                    fields=[
                        (
                            "pk",
                            models.CompositePrimaryKey(
                                "access_id", "read_at", blank=True, editable=False, primary_key=True, serialize=False
                            ),
                        ),
                        (
                            "access_id",
                            models.BigIntegerField(
                                db_default=models.Func(
                                    output_field=models.BigIntegerField(),
                                    template="nextval('entitlements.access_audit_access_id_seq'::regclass)",
                                ),
                                editable=False,
                            ),
                        ),
                        ("read_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("object_type", models.CharField(choices=[("case", "Case"), ("task", "Task")], max_length=10)),
                        ("object_id", models.BigIntegerField()),
                        ("object_label", models.CharField(blank=True, default="", max_length=200)),
                        (
                            "channel",
                            models.CharField(
                                choices=[("page", "Caseworker page"), ("api", "API"), ("admin", "Supervisor console")],
                                max_length=10,
                            ),
                        ),
                        (
                            "outcome",
                            models.CharField(
                                choices=[("granted", "Shown"), ("denied", "Refused (outside the reader's queues)")],
                                default="granted",
                                max_length=10,
                            ),
                        ),
                        ("method", models.CharField(max_length=10)),
                        ("path", models.CharField(max_length=500)),
                        ("remote_addr", models.GenericIPAddressField(null=True)),
                        (
                            "reader",
                            models.ForeignKey(
                                db_constraint=False,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "via_account",
                            models.ForeignKey(
                                db_constraint=False,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "access audit entry",
                        "verbose_name_plural": "access audit",
                        "db_table": 'entitlements"."access_audit',
                        "ordering": ["-read_at", "-access_id"],
                        "indexes": [
                            models.Index(fields=["object_type", "object_id", "-read_at"], name="access_audit_object"),
                            models.Index(fields=["reader", "-read_at"], name="access_audit_reader"),
                        ],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("object_type__in", ["case", "task"])),
                                name="access_audit_object_type_valid",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("channel__in", ["page", "api", "admin"])),
                                name="access_audit_channel_valid",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("outcome__in", ["granted", "denied"])),
                                name="access_audit_outcome_valid",
                            ),
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
