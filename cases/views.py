"""The case pages: the list of the cases I may see, and a case with its allegations, its current tasks and where its
work has been (a timeline)."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET
from rest_framework.request import Request

from core.errors import InvalidInput, NotFound
from core.links import per_object_url
from core.replica import replica_reads
from entitlements.detail_reads import detail_read_record, detail_read_refusal_record
from entitlements.models import DetailReadChannel, DetailReadObject
from tasks.models import ACTIVE_TASK_STATUSES, WorkflowTask
from tasks.selectors import tasks_visible_to
from tasks.views import annotate_due, not_found_page

from . import selectors
from .pagination import CaseCursorPagination

OPENED_FORMAT = "j M Y, H:i"


def routing_timeline(mappings) -> list[dict]:
    """Every hop of every workflow of the case, oldest first, with its time parsed for display."""
    hops = []
    for mapping in mappings:
        for hop in mapping.routing_history or []:
            hops.append(
                {
                    **hop,
                    "at": parse_datetime(hop.get("at") or "") if hop.get("at") else None,
                    "workflow_type": mapping.workflow_type,
                }
            )
    return sorted(hops, key=lambda h: (h["at"] is None, h["at"] or timezone.now()))


@require_GET
def case_page(request, case_id: int):
    try:
        case = selectors.case_for_user(user=request.user, case_id=case_id)
    except NotFound as error:
        detail_read_refusal_record(
            request=request,
            channel=DetailReadChannel.PAGE,
            object_type=DetailReadObject.CASE,
            object_id=case_id,
            error=error,
        )
        return not_found_page(request, error)
    detail_read_record(
        request=request,
        channel=DetailReadChannel.PAGE,
        object_type=DetailReadObject.CASE,
        object_id=case.pk,
        object_label=case.case_number,
    )
    mappings = list(case.workflow_mappings.order_by("mapping_id"))
    current = annotate_due(
        WorkflowTask.objects.filter(
            process_instance_id__in=[m.process_instance_id for m in mappings], status__in=ACTIVE_TASK_STATUSES
        )
        .select_related("assignee")
        .order_by("task_id"),
        timezone.now(),
    )
    # Link only the tasks the user may open: the others would be 404.
    openable = set(
        tasks_visible_to(user=request.user).filter(pk__in=[t.pk for t in current]).values_list("pk", flat=True)
    )
    for task in current:
        task.openable = task.pk in openable
    return render(
        request,
        "cases/case.html",
        {
            "case": case,
            "current_tasks": current,
            "subjects": case.subjects.order_by("subject_id"),
            "timeline": routing_timeline(mappings),
        },
    )


def with_row_labels(cases: list) -> list:
    """Each case's link and opening time as the list shows them (the time in the current time zone, OPENED_FORMAT),
    made here: the template's url tag and date filter do the same with a resolver walk, a lookup and a time-zone step
    more per row (core/links.py)."""
    case_url = per_object_url("case-page")
    for case in cases:
        case.url = case_url(case.pk)
        case.opened = formats.date_format(timezone.localtime(case.created_at), OPENED_FORMAT)
    return cases


@require_GET
@replica_reads  # like the API's list: a list tolerates a few seconds of lag (core/replica.py)
def case_list(request):
    """The cases I may see, newest first, a cursor page at a time (the API's list and pagination), with a count
    that says whether it is exact, capped or estimated."""
    listing = selectors.case_list(user=request.user)
    pagination = CaseCursorPagination(count=listing.count)
    try:
        cases = pagination.paginate_queryset(listing.cases.defer(*selectors.CASE_LIST_PAGE_DEFERRED), Request(request))
    except InvalidInput as error:
        context = {"error": error.detail, "fields": error.fields}
        return render(request, "cases/list.html", context, status=error.http_status)
    context = {
        "cases": with_row_labels(cases),
        "count": pagination.count,
        "next": pagination.get_next_link(),
        "previous": pagination.get_previous_link(),
    }
    return render(request, "cases/list.html", context)
