"""The single authority on who may view, work, supervise or deploy to which queue, evaluated at request time.

Permissions live on queues (django-guardian direct foreign-key tables), granted to a user directly or to the
group behind a workflow role. A role counts only while one of the user's assignments to it is valid now:
nothing needs to sweep expired assignments for them to stop granting. A role scoped to a department also
covers every queue of that department's subtree. Task and case visibility are subqueries over these queues.

The rule is written once, in SQL: entitlements/sql/queue_grants.sql. Both directions ask it, "which queues may
this user ... now" (queues_for, through entitlements.queue_ids_for) and "who may ... this queue now" (users_with,
through entitlements.user_ids_with); claim-next asks it inside the database (flowable.claim_next_for_user →
entitlements.work_access_for, entitlements/sql/work_access_for.sql), which remembers each user's answer until an
entitlement row changes (triggers move entitlements.access_epoch) or one of the user's assignment windows opens or
closes. Which capability a question needs is decided here (GRANTING_CAPABILITIES).

Superusers: see console_shows_every_row, the one place the superuser flag bears on queue access.

This module names the queue model by its label, so entitlements imports no other app.
"""

from __future__ import annotations

import operator
from datetime import datetime
from functools import reduce

from django.apps import apps
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from .models import Capability, Right, UserRoleAssignment

QUEUE_MODEL = "queues.WorkflowQueue"

# A capability is granted by its own permission or by a stronger one.
GRANTING_CAPABILITIES: dict[str, tuple[str, ...]] = {
    Capability.VIEW: (Capability.VIEW, Capability.WORK, Capability.SUPERVISE),
    Capability.WORK: (Capability.WORK,),
    Capability.SUPERVISE: (Capability.SUPERVISE,),
    Capability.DEPLOY: (Capability.DEPLOY,),
}


def permission_codename(capability: str) -> str:
    return f"{capability}_workflowqueue"


def valid_assignments(*, user, at: datetime) -> QuerySet:
    """The user's role assignments in force at `at`."""
    return UserRoleAssignment.objects.filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=at),
        user=user,
        revoked_at__isnull=True,
        valid_from__lte=at,
    )


QUEUE_IDS_SQL = "SELECT entitlements.queue_ids_for(%s, %s::text[], %s)"
USER_IDS_SQL = "SELECT entitlements.user_ids_with(%s, %s::text[], %s)"


def queue_ids_subquery(*, user_id: int, capability: str, at: datetime) -> RawSQL:
    """The ids of the queues reachable with `capability`, as a subquery (entitlements.queue_ids_for)."""
    return RawSQL(QUEUE_IDS_SQL, (user_id, list(GRANTING_CAPABILITIES[capability]), at))


def queues_for(*, user, capability: str, at: datetime | None = None) -> QuerySet:
    """Queues on which `user` holds `capability` at `at` (default: now). A lazy queryset, usable as a subquery.

    One query whatever the number of queues, roles or assignments. The rule itself is SQL
    (entitlements/sql/queue_grants.sql), so the API, pages, admin and the claim function all agree, and
    building the query costs next to nothing in Python. Superusers get no shortcut: queue access comes from
    roles alone.
    """
    queue_model = apps.get_model(QUEUE_MODEL)
    if capability not in GRANTING_CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    if user is None or not user.is_authenticated or not user.is_active:
        return queue_model.objects.none()
    subquery = queue_ids_subquery(user_id=user.pk, capability=capability, at=at or timezone.now())
    return queue_model.objects.filter(pk__in=subquery)


def queue_names_for(*, user, capability: str, at: datetime | None = None) -> list[str]:
    """The names of `queues_for(...)`, evaluated now (one query)."""
    return list(
        queues_for(user=user, capability=capability, at=at).order_by("queue_name").values_list("queue_name", flat=True)
    )


def may(*, user, capability: str, queue_name: str, at: datetime | None = None) -> bool:
    """Whether `user` holds `capability` on the queue named `queue_name` (one query)."""
    return queues_for(user=user, capability=capability, at=at).filter(queue_name=queue_name).exists()


ALL_CAPABILITIES = (Capability.VIEW, Capability.WORK, Capability.SUPERVISE, Capability.DEPLOY)


def capabilities_by_queue(
    *, user, at: datetime | None = None, capabilities: tuple[str, ...] = ALL_CAPABILITIES
) -> dict[str, list[str]]:
    """Every queue the user reaches now with the capabilities held there (of `capabilities`, default all four), in
    one query: a flag per capability, each the rule's set of queue ids for it (the planner evaluates each set once
    and hashes it)."""
    queue_model = apps.get_model(QUEUE_MODEL)
    if user is None or not user.is_authenticated or not user.is_active:
        return {}
    if unknown := [capability for capability in capabilities if capability not in GRANTING_CAPABILITIES]:
        raise ValueError(f"unknown capability {unknown[0]!r}")
    at = at or timezone.now()
    capabilities = [str(capability) for capability in capabilities]
    flags = {
        f"holds_{capability}": ExpressionWrapper(
            Q(pk__in=queue_ids_subquery(user_id=user.pk, capability=capability, at=at)), output_field=BooleanField()
        )
        for capability in capabilities
    }
    rows = (
        queue_model.objects.annotate(**flags)
        .filter(reduce(operator.or_, (Q(**{flag: True}) for flag in flags)))
        .order_by("queue_name")
        .values_list("queue_name", *flags)
    )
    return {
        name: [capability for capability, held in zip(capabilities, held_flags, strict=True) if held]
        for name, *held_flags in rows
    }


DEPARTMENT_ANCESTORS_SQL = """
WITH RECURSIVE ancestors(department_id, parent_id) AS (
    SELECT d.department_id, d.parent_id FROM entitlements.departments d WHERE d.department_id = %s
    UNION
    SELECT d.department_id, d.parent_id FROM entitlements.departments d JOIN ancestors a ON d.department_id = a.parent_id
)
SELECT department_id FROM ancestors
"""


def users_with(*, capability: str, queue, at: datetime | None = None) -> QuerySet:
    """Active users holding `capability` on `queue` at `at` (default: now), as one lazy query (routing, 'who can
    work this now'). The inverse of queues_for, by the same rule (entitlements.user_ids_with)."""
    user_model = apps.get_model("entitlements", "User")
    if capability not in GRANTING_CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    granting = list(GRANTING_CAPABILITIES[capability])
    return user_model.objects.filter(pk__in=RawSQL(USER_IDS_SQL, (queue.pk, granting, at or timezone.now())))


SUPERVISOR_IDS_SQL = "SELECT g.user_id FROM entitlements.queue_grants(%s::text[], %s) g"


def supervisors(*, at: datetime | None = None) -> QuerySet:
    """Active users who supervise at least one queue at `at` (default: now), by the same rule (the summary emails)."""
    user_model = apps.get_model("entitlements", "User")
    granting = list(GRANTING_CAPABILITIES[Capability.SUPERVISE])
    return user_model.objects.filter(
        is_active=True, pk__in=RawSQL(SUPERVISOR_IDS_SQL, (granting, at or timezone.now()))
    )


def console_shows_every_row(*, user) -> bool:
    """Whether the supervisor console lists every row for `user` instead of the rows of queues they supervise.

    The one superuser policy: an active superuser reads every row of the console's listings and detail pages
    (tasks, queues, process instances, cases and their events), because admin is where they inspect and repair.
    Reading is all the flag gives. queues_for, may, users_with and holds_right answer for a superuser from their
    roles like for anyone, so claiming, completing, reassigning, escalating, suspending, cancelling or retrying a
    process's failed step needs a role; granting oneself one is an audited privilege change.
    """
    return user is not None and user.is_authenticated and user.is_active and user.is_superuser


def holds_right(*, user, right: str, at: datetime | None = None) -> bool:
    """Whether one of the user's role assignments in force at `at` names `right` (one query). No superuser shortcut."""
    if right not in Right.values:
        raise ValueError(f"unknown right {right!r}")
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return valid_assignments(user=user, at=at or timezone.now()).filter(role__permissions__contains=[right]).exists()


def act_as_refusal(*, account, target, at: datetime | None = None) -> str | None:
    """Why `account` may not act for `target` now, or None when it may.

    It needs entitlements.act_on_behalf and `target` inside the scope configured on the account: a department
    of `act_as_departments` (with its subtree) or a role of `act_as_roles` held now. Staff and superusers are
    outside every scope unless the account has `act_as_staff`.
    """
    if not account.has_perm("entitlements.act_on_behalf"):
        return "this account may not act on behalf of other users"
    if target.pk == account.pk:
        return None
    if (target.is_staff or target.is_superuser) and not account.act_as_staff:
        return "this account may not act for staff or superusers"
    if (
        target.department_id is not None
        and account.act_as_departments.filter(
            department_id__in=RawSQL(DEPARTMENT_ANCESTORS_SQL, (target.department_id,))
        ).exists()
    ):
        return None
    if (
        valid_assignments(user=target, at=at or timezone.now())
        .filter(role__in=account.act_as_roles.values("pk"))
        .exists()
    ):
        return None
    return "that user is outside the scope this account may act for"
