"""The supervisor's task page in admin shows, beside each history event that moved the task, why it went there."""

import pytest

from queues.models import WorkflowQueue
from tasks.services import task_claim_next

pytestmark = pytest.mark.django_db


def test_the_admin_task_history_says_why_the_task_was_routed(client, supervisor_sam, caseworker_alice, make_task):
    WorkflowQueue.objects.filter(queue_name="triage").update(max_capacity=0)
    make_task("triage", name="triage first", priority=90)
    task = make_task("intake", name="Intake review", priority=40)
    task_claim_next(user=caseworker_alice)
    client.force_login(supervisor_sam)

    body = client.get(f"/admin/tasks/workflowtask/{task.pk}/change/").content.decode()

    assert "Why routed" in body
    assert "alice claimed it with claim-next from intake" in body
    assert "<li>Queue triage (best open task priority 90): at capacity (0/0).</li>" in body
