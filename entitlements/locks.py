"""Locks on entitlements' own rows (roles, role assignments, API tokens), taken through core.locks.rows_for_update.

Entitlement services lock only their own rows and nothing else, so they take no part in the cross-app order that
tasks/locks.py sets out (process instance, then task, then queue).
"""

from __future__ import annotations

from django.db.models import QuerySet

from core.locks import rows_for_update

from .models import UserRoleAssignment, WorkflowRole


def roles_for_update() -> QuerySet:
    return rows_for_update(WorkflowRole.objects.all())


def role_assignments_for_update() -> QuerySet:
    return rows_for_update(UserRoleAssignment.objects.all())


def api_tokens_for_update(queryset: QuerySet) -> QuerySet:
    return rows_for_update(queryset)
