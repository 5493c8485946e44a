"""The supervisor dashboard counts each queue's tasks at risk (forecast breach probability >= SLA_RISK_THRESHOLD)."""

import pytest
from django.utils import timezone

from entitlements.row_scope import system_scope
from tasks.console.dashboard import supervisor_dashboard
from tasks.models import TaskRisk
from tasks.sla.maintenance import refresh_dashboards

pytestmark = pytest.mark.django_db


def test_dashboard_counts_the_tasks_at_risk_per_queue(client, supervisor_sam, make_task):
    with system_scope():
        for probability in (0.9, 0.55, 0.2):
            task = make_task("intake", f"p={probability}")
            TaskRisk.objects.create(
                task_id=task.task_id, queue_name="intake", breach_probability=probability, computed_at=timezone.now()
            )
    refresh_dashboards()

    queues = {q.queue_name: q for q in supervisor_dashboard(user=supervisor_sam).queues}
    assert (queues["intake"].at_risk, queues["triage"].at_risk) == (2, 0)

    client.force_login(supervisor_sam)
    body = client.get("/admin/").content.decode()
    row = body[body.index('data-queue="intake"') :]
    assert '<td class="num at-risk" data-figure="at-risk">2</td>' in row[: row.index("</tr>")]
