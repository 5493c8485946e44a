"""The "At risk" badge: tasks whose SLA-risk forecast reaches SLA_RISK_THRESHOLD, in the inbox and /inbox/queues/."""

import pytest
from django.utils import timezone

from entitlements.row_scope import system_scope
from tasks.models import TaskRisk, WorkflowTask

pytestmark = pytest.mark.django_db

BADGE = 'class="badge at-risk"'


def _forecast(task, probability):
    with system_scope():
        TaskRisk.objects.create(
            task_id=task.task_id, queue_name=task.queue_id, breach_probability=probability, computed_at=timezone.now()
        )


def test_inbox_marks_my_claimed_task_at_risk_and_not_the_safe_one(page_as, caseworker_alice, make_task):
    risky, safe = make_task("intake", name="Risky task"), make_task("intake", name="Safe task")
    WorkflowTask.objects.filter(pk__in=[risky.pk, safe.pk]).update(
        status="CLAIMED", assignee=caseworker_alice, claimed_at=timezone.now()
    )
    _forecast(risky, 0.7)
    _forecast(safe, 0.2)

    body = page_as(caseworker_alice).get("/inbox/").content.decode()

    items = {
        name: body[body.index(name) : body.index("</li>", body.index(name))] for name in ("Risky task", "Safe task")
    }
    assert BADGE in items["Risky task"]
    assert BADGE not in items["Safe task"]


def test_queue_list_marks_open_tasks_at_risk(page_as, caseworker_alice, make_task):
    risky = make_task("intake", name="Risky open task")
    _forecast(risky, 0.9)

    body = page_as(caseworker_alice).get("/inbox/queues/").content.decode()

    assert BADGE in body[body.index("Risky open task") :]
