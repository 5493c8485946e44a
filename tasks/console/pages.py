"""Pages of the supervisor console that are no model's: the database health page."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from tasks.console.database_health import database_health

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
