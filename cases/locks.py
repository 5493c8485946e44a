"""Locks on the cases schema's rows: a case's routing history comes last in the lock order (tasks/locks.py)."""

from __future__ import annotations

from django.db.models import QuerySet

from core.locks import rows_for_update

from .models import CaseSubject, CaseWorkflowMapping


def case_mappings_for_update() -> QuerySet:
    """Case ↔ process instance mappings, locked when read: after the task whose move they record."""
    return rows_for_update(CaseWorkflowMapping.objects.all())


def case_subjects_for_update() -> QuerySet:
    """Case subjects, locked when read (erasure): rows of their own that no workflow step locks."""
    return rows_for_update(CaseSubject.objects.all())
