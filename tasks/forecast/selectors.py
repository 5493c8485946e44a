"""Reads of the stored SLA-risk forecasts for pages: which of these tasks are at risk."""

from __future__ import annotations

from django.conf import settings

from ..models import TaskRisk


def tasks_at_risk(*, task_ids: list[int]) -> set[int]:
    """Of the given tasks (already checked for the caller), those whose forecast is at least SLA_RISK_THRESHOLD."""
    if not task_ids:
        return set()
    return set(
        TaskRisk.objects.filter(task_id__in=task_ids, breach_probability__gte=settings.SLA_RISK_THRESHOLD).values_list(
            "task_id", flat=True
        )
    )
