"""Pages of the supervisor console that are no model's: the database health page, process mining."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.safestring import mark_safe

from tasks.bpmn.mining_overlay import HEAT_RAMP
from tasks.console.database_health import database_health
from tasks.console.mining import (
    COLOUR_BY_FREQUENCY,
    COLOUR_MODES,
    DEFAULT_PERIOD_DAYS,
    PERIOD_DAYS,
    may_view_process_mining,
    process_mining,
)
from tasks.models import WorkflowDefinition

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
