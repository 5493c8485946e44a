"""Shared helpers of the console tests: users, data and the admin action posts."""

from datetime import timedelta

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from cases.demo import SUPERVISOR_CONSOLE_GROUP
from entitlements.models import Department, User
from entitlements.services import role_assignment_grant, role_save
from tests.roles import analyze

TASKS_URL = "/admin/tasks/workflowtask/"
QUEUES_URL = "/admin/queues/workflowqueue/"
PROCESSES_URL = "/admin/tasks/processinstance/"


def legal_supervisor() -> User:
    """A staff user who supervises the Legal department's queues only (a department-scoped role)."""
    role = role_save(
        role_code="legal-supervisor",
        name="Legal supervisor",
        queue_names=[],
        permissions=["view", "supervise"],
        department=Department.objects.get(dept_name="Legal"),
    )
    user = User.objects.create_user(username="lena", password="pw-for-tests-1", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPERVISOR_CONSOLE_GROUP))
    role_assignment_grant(user=user, role=role)
    return user


def post_action(client, url, action, ids, **form):
    """Submit a bulk action from the changelist, then (for actions with a form) its intermediate page."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(i) for i in ids], "index": "0"}
    first = client.post(url, data)
    if not form:
        return first
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(i) for i in ids], "apply": "Apply", **form}
    return client.post(url, data, follow=True)


GENERATE_TASKS_SQL = """
INSERT INTO flowable.workflow_tasks
    (name, description, queue_name, candidate_groups, assignee_id, owner_id, delegation_state, status, priority,
     due_date, escalation_level, required_skills, variables, form_fields, created_at, claimed_at, completed_at,
     updated_at, task_definition_key)
SELECT 'Generated ' || g, '', q.names[1 + g %% array_length(q.names, 1)], ARRAY[]::varchar[],
       CASE WHEN g %% 10 <> 8 THEN %(worker)s END, NULL, '',
       CASE WHEN g %% 10 < 8 THEN 'COMPLETED' WHEN g %% 10 = 8 THEN 'OPEN' ELSE 'CLAIMED' END,
       (g * 7) %% 101,
       now() - interval '30 days' + (g %% 43200) * interval '1 minute' + interval '2 days',
       CASE WHEN g %% 50 = 0 THEN 1 ELSE 0 END, ARRAY[]::varchar[], '{}'::jsonb, '[]'::jsonb,
       now() - interval '30 days' + (g %% 43200) * interval '1 minute',
       CASE WHEN g %% 10 <> 8 THEN now() - interval '30 days' + (g %% 43200) * interval '1 minute' END,
       CASE WHEN g %% 10 < 8 THEN now() - interval '30 days' + (g %% 43200) * interval '1 minute' + (g %% 97) * interval '1 hour' END,
       now(), ''
  FROM generate_series(1, %(count)s) g,
       (SELECT array_agg(queue_name ORDER BY queue_name) AS names FROM queues.workflow_queues) q
"""


def generate_tasks(count: int, worker: User) -> None:
    """Bulk tasks straight into the table (80 % completed, 10 % open, 10 % claimed by `worker`), then ANALYZE."""
    with connection.cursor() as cursor:
        cursor.execute(GENERATE_TASKS_SQL, {"count": count, "worker": worker.pk})
        analyze(cursor, "flowable.workflow_tasks")


def past(hours: float):
    return timezone.now() - timedelta(hours=hours)
