"""The demo workflow's records check: a Python handler of the external task topic `case-records-check`.

onecms_case_handling version 2 (tasks/bpmn/onecms_case_handling_v2.bpmn) reaches its service task "Records check"
after intake; a worker that runs this module's handler (settings.EXTERNAL_TASK_HANDLER_MODULES lists
"cases.records_check", as bin/run sets it) locks the item on Celery, looks the case's subjects up among the earlier
cases by their keyed name and email hashes (never decrypting a name) and completes the item with `prior_cases`: the
instance moves on to wait for the documents.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from core.errors import NotFound
from entitlements.row_scope import system_scope
from tasks.external.registry import ExternalTaskInput, external_task_handler

from .models import Case, CaseSubject, SubjectRole

TOPIC = "case-records-check"


def records_check(case_number: str) -> dict:
    """The variables the check completes its item with: how many earlier cases name one of this case's subjects."""
    with system_scope():  # a job of the system's, for any case
        case = Case.objects.filter(case_number=case_number).only("pk", "created_at").first()
        if case is None:
            raise NotFound(f"no case {case_number}", code="case_not_found")
        subjects = CaseSubject.objects.filter(case=case, role=SubjectRole.SUBJECT)
        names = [h for h in subjects.values_list("name_hash", flat=True) if h]
        emails = [h for h in subjects.values_list("email_hash", flat=True) if h]
        prior = 0
        if names or emails:
            prior = (
                Case.objects.filter(created_at__lt=case.created_at)
                .filter(
                    Q(subjects__role=SubjectRole.SUBJECT)
                    & (Q(subjects__name_hash__in=names) | Q(subjects__email_hash__in=emails))
                )
                .distinct()
                .count()
            )
    return {"prior_cases": prior, "records_checked_on": timezone.localdate().isoformat()}


@external_task_handler(TOPIC)
def check_records(item: ExternalTaskInput) -> dict:
    return records_check(item.business_key)
