"""Archive tables for completed tasks and their history, partitioned by month (partitions made on demand).

The columns mirror flowable.workflow_tasks and flowable.task_history, plus archived_at. There are no foreign keys:
an archived row must outlive changes to the users and queues it names. Month partitions are created by
tasks.archive before it moves rows into them; the DEFAULT partitions catch anything inserted some other way.
"""
from django.db import migrations

CREATE = """
CREATE TABLE flowable.workflow_tasks_archive (
    task_id             bigint                   NOT NULL,
    engine_task_id      uuid,
    task_definition_key varchar(200)             NOT NULL,
    name                varchar(300)             NOT NULL,
    description         text                     NOT NULL,
    candidate_groups    varchar(100)[]           NOT NULL,
    status              varchar(20)              NOT NULL,
    priority            integer                  NOT NULL,
    due_date            timestamptz,
    escalation_level    integer                  NOT NULL,
    required_skills     varchar(50)[]            NOT NULL,
    variables           jsonb                    NOT NULL,
    form_fields         jsonb                    NOT NULL,
    created_at          timestamptz              NOT NULL,
    claimed_at          timestamptz,
    completed_at        timestamptz              NOT NULL,
    updated_at          timestamptz              NOT NULL,
    assignee_id         bigint,
    owner_id            bigint,
    process_instance_id bigint,
    queue_name          varchar(100)             NOT NULL,
    delegation_state    varchar(10)              NOT NULL,
    archived_at         timestamptz              NOT NULL DEFAULT now(),
    -- The partition key must be part of the key; task_id alone is still unique because each task is moved once.
    PRIMARY KEY (task_id, completed_at)
) PARTITION BY RANGE (completed_at);
CREATE TABLE flowable.workflow_tasks_archive_default PARTITION OF flowable.workflow_tasks_archive DEFAULT;
CREATE INDEX idx_workflow_tasks_archive_instance ON flowable.workflow_tasks_archive (process_instance_id);

CREATE TABLE flowable.task_history_archive (
    event_id       bigint       NOT NULL,
    event_type     varchar(30)  NOT NULL,
    old_values     jsonb        NOT NULL,
    new_values     jsonb        NOT NULL,
    comment        text         NOT NULL,
    created_at     timestamptz  NOT NULL,
    actor_id       bigint,
    via_account_id bigint,
    task_id        bigint       NOT NULL,
    archived_at    timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE flowable.task_history_archive_default PARTITION OF flowable.task_history_archive DEFAULT;
-- The history of one archived task, in order (what the API's history endpoint would ask).
CREATE INDEX idx_task_history_archive_task ON flowable.task_history_archive (task_id, created_at);
"""

DROP = """
DROP TABLE IF EXISTS flowable.task_history_archive CASCADE;
DROP TABLE IF EXISTS flowable.workflow_tasks_archive CASCADE;
"""


class Migration(migrations.Migration):
    dependencies = [("tasks", "0005_engine_state_as_ordered_json")]
    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
