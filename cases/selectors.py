"""Reads of cases. A case is visible through the queues of its tasks, to its assignee, and to its creator."""
from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from entitlements.access import queues_for
from entitlements.errors import NotFound
from entitlements.models import Capability
from tasks.models import WorkflowTask

from .models import Case


def cases_visible_to(*, user) -> QuerySet:
    in_my_queues = WorkflowTask.objects.filter(
        process_instance__case_mapping__case=OuterRef("pk"),
        queue_id__in=queues_for(user=user, capability=Capability.VIEW).values("queue_name"),
    )
    return Case.objects.filter(Q(assigned_to=user) | Q(created_by=user) | Exists(in_my_queues))


def case_for_user(*, user, case_id: int) -> Case:
    case = cases_visible_to(user=user).filter(pk=case_id).first()
    if case is None:
        error = NotFound(f"case {case_id} not found", code="case_not_found")
        if Case.objects.filter(pk=case_id).exists():
            error.denial = {"case_id": case_id}
        raise error
    return case
