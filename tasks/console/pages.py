"""Pages of the supervisor console that are no model's: the database health page, process mining, staffing what-if."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.safestring import mark_safe

from core.errors import InvalidInput, NotFound
from tasks.bpmn.mining_overlay import HEAT_RAMP
from tasks.console.charts import backlog_band_chart
from tasks.console.database_health import database_health
from tasks.console.mining import (
    COLOUR_BY_FREQUENCY,
    COLOUR_MODES,
    DEFAULT_PERIOD_DAYS,
    PERIOD_DAYS,
    may_view_process_mining,
    process_mining,
)
from tasks.forecast.whatif_services import (
    DEFAULT_HORIZON_DAYS,
    MAX_DELTA,
    MAX_HORIZON_DAYS,
    whatif_queues_for,
    whatif_run_request,
    whatif_runs_for_queue,
)
from tasks.models import WhatIfStatus, WorkflowDefinition

DATABASE_HEALTH_PERMISSION = "tasks.view_database_health"
DATABASE_HEALTH_TEMPLATE = "admin/console/database_health.html"


def database_health_page(request):
    """Blocking chains, slow statements, sizes, unused indexes, vacuum, deadlocks, connections and replication.
    Staff with tasks.view_database_health (superusers hold every permission); the admin site checks staff."""
    if not request.user.has_perm(DATABASE_HEALTH_PERMISSION):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "Database health",
        "health": database_health(),
    }
    return TemplateResponse(request, DATABASE_HEALTH_TEMPLATE, context)


PROCESS_MINING_INDEX_TEMPLATE = "admin/console/process_mining_index.html"
PROCESS_MINING_TEMPLATE = "admin/console/process_mining.html"


def process_mining_index_page(request):
    """The definition versions to mine, newest first. Staff who supervise a queue (tasks/console/mining.py)."""
    if not may_view_process_mining(user=request.user):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "Process mining",
        "definitions": WorkflowDefinition.objects.order_by("process_key", "-version"),
    }
    return TemplateResponse(request, PROCESS_MINING_INDEX_TEMPLATE, context)


def process_mining_page(request, workflow_id: int):
    """One definition version's diagram with the heat overlay (?colour=frequency|duration) over the last
    ?days=7|30|90 days, its moves, rework and variants: server-rendered, no script."""
    if not may_view_process_mining(user=request.user):
        raise PermissionDenied
    definition = get_object_or_404(WorkflowDefinition, pk=workflow_id)
    days = _choice(request.GET.get("days"), {str(d): d for d in PERIOD_DAYS}, DEFAULT_PERIOD_DAYS)
    colour_by = _choice(request.GET.get("colour"), {c: c for c in COLOUR_MODES}, COLOUR_BY_FREQUENCY)
    mining = process_mining(definition=definition, days=days, colour_by=colour_by)
    context = {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,  # a wide drawing: the page gets the full width
        "title": f"Process mining: {definition.name or definition.process_key} (version {definition.version})",
        "mining": mining,
        # Safe: the overlay is built with ElementTree, which escapes every string from the model.
        "svg": mark_safe(mining.svg),
        "periods": PERIOD_DAYS,
        "colour_modes": COLOUR_MODES,
        "heat_ramp": HEAT_RAMP,
    }
    return TemplateResponse(request, PROCESS_MINING_TEMPLATE, context)


def _choice(raw, allowed: dict, default):
    return allowed.get(raw, default)


# --- staffing what-if ---------------------------------------------------------------------------------------------

STAFFING_WHATIF_INDEX_TEMPLATE = "admin/console/staffing_whatif_index.html"
STAFFING_WHATIF_TEMPLATE = "admin/console/staffing_whatif.html"
# While a run is queued or running, the page reloads itself this often (the admin pages load no script).
WHATIF_REFRESH_SECONDS = 2


class StaffingWhatIfForm(forms.Form):
    delta = forms.IntegerField(
        label="Caseworkers more (or fewer, negative)", initial=0, min_value=-MAX_DELTA, max_value=MAX_DELTA
    )
    horizon_days = forms.IntegerField(
        label="Over the next (days)", initial=DEFAULT_HORIZON_DAYS, min_value=1, max_value=MAX_HORIZON_DAYS
    )
    specialists = forms.CharField(
        label="Specialists (skill mix)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 30}),
        help_text="One line per task type: type=count, caseworkers more who take only that type.",
    )

    def clean_specialists(self) -> dict[str, int]:
        mix = {}
        for number, line in enumerate(self.cleaned_data["specialists"].splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, count = line.partition("=")
            if not sep or not key.strip() or not count.strip().isdigit():
                raise forms.ValidationError(f"Line {number}: write type=count, as review=2.")
            mix[key.strip()] = mix.get(key.strip(), 0) + int(count.strip())
        return mix


def staffing_whatif_index_page(request):
    """The queues the user supervises, each with its what-if page."""
    queues = whatif_queues_for(user=request.user)
    if not queues.exists():
        raise PermissionDenied
    context = {**admin.site.each_context(request), "title": "Staffing what-if", "queues": queues}
    return TemplateResponse(request, STAFFING_WHATIF_INDEX_TEMPLATE, context)


def staffing_whatif_page(request, queue_name: str):
    """One queue: the form asking for a run, the chosen run (?run=, else the newest) with its progress or its
    charted result, and the queue's past runs. Only the queue's supervisors; anyone else gets 404, as for tasks."""
    try:
        runs = whatif_runs_for_queue(user=request.user, queue_name=queue_name)
    except NotFound:
        raise Http404 from None
    form = StaffingWhatIfForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = whatif_run_request(user=request.user, queue_name=queue_name, **form.cleaned_data)
        except InvalidInput as exc:
            for field, messages in exc.fields.items():
                for message in messages:
                    form.add_error(field if field in form.fields else None, message)
        else:
            return HttpResponseRedirect(f"{request.path}?run={run.pk}")
    chosen = _chosen_run(runs, request.GET.get("run"))
    pending = chosen is not None and chosen.status in (WhatIfStatus.QUEUED, WhatIfStatus.RUNNING)
    context = {
        **admin.site.each_context(request),
        "title": f"Staffing what-if: {queue_name}",
        "queue_name": queue_name,
        "form": form,
        "runs": runs,
        "run": chosen,
        "refresh_seconds": WHATIF_REFRESH_SECONDS if pending else None,
        "figures": _whatif_figures(chosen) if chosen is not None and chosen.result else None,
    }
    return TemplateResponse(request, STAFFING_WHATIF_TEMPLATE, context)


def _chosen_run(runs, raw):
    if raw and raw.isdigit():
        return next((run for run in runs if run.pk == int(raw)), None)
    return runs[0] if runs else None


def _whatif_figures(run) -> dict:
    result = run.result
    scenario, baseline = result["scenario"], result["baseline"]
    rows = []
    for label, key, percent in (
        ("SLA compliance", "sla_compliance", True),
        ("Median wait (business hours)", "wait_p50", False),
        ("90th percentile wait (business hours)", "wait_p90", False),
    ):
        rows.append(
            {
                "label": label,
                "percent": percent,
                "scenario": _scaled(scenario.get(key), percent),
                "baseline": _scaled(baseline.get(key), percent),
            }
        )
    backlog_end = scenario["backlog"][-1] if scenario["backlog"] else None
    return {
        "chart": backlog_band_chart(
            [tuple(b) for b in scenario["backlog"]],
            baseline=None if scenario == baseline else [tuple(b) for b in baseline["backlog"]],
            day_starts=result.get("day_starts", []),
        ),
        "rows": rows,
        "backlog_end": backlog_end,
        "result": result,
    }


def _scaled(band, percent: bool):
    if band is None:
        return None
    return [100 * value for value in band] if percent else band
