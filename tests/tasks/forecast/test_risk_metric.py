"""/metrics exports workflow_tasks_at_risk per queue: forecasts at or above SLA_RISK_THRESHOLD."""

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from entitlements.row_scope import system_scope
from tasks.models import TaskRisk


def _at_risk(response) -> dict:
    return {
        sample.labels["queue"]: sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if sample.name == "workflow_tasks_at_risk"
    }


@pytest.mark.parametrize("threshold", [0.5, 0.9])
def test_metrics_count_the_tasks_at_risk_per_queue(client, settings, make_task, threshold):
    settings.SLA_RISK_THRESHOLD = threshold
    with system_scope():
        for probability in (0.95, 0.6, 0.1):
            task = make_task("intake", f"p={probability}")
            TaskRisk.objects.create(
                task_id=task.task_id, queue_name="intake", breach_probability=probability, computed_at=timezone.now()
            )

    at_risk = _at_risk(client.get("/metrics"))

    assert at_risk["intake"] == (2 if threshold == 0.5 else 1)
    assert at_risk["triage"] == 0
