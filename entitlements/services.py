"""Writes of entitlements: roles, time-bound role assignments, API tokens, the security audit (with its tally
of failed authentications) and the access audit (who read which case or task detail)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from core.errors import InvalidInput, NotFound, PermissionDenied

from . import signals
from .locks import api_tokens_for_update, role_assignments_for_update, roles_for_update
from .models import (
    AccessAuditEntry,
    ApiToken,
    Capability,
    DetailReadOutcome,
    Right,
    SecurityEvent,
    User,
    UserRoleAssignment,
    WorkflowRole,
)


def security_event_record(
    *,
    event_type: str,
    actor=None,
    actor_username: str = "",
    on_behalf_of_username: str = "",
    remote_addr: str | None = None,
    path: str = "",
    details: dict | None = None,
) -> SecurityEvent:
    """Append one row to the security audit."""
    if actor is not None and not actor_username:
        actor_username = actor.get_username()
    return SecurityEvent.objects.create(
        event_type=event_type,
        actor=actor if actor is not None and actor.pk else None,
        actor_username=actor_username[:150],
        on_behalf_of_username=on_behalf_of_username[:150],
        remote_addr=remote_addr or None,
        path=path[:500],
        details=details or {},
    )


def access_audit_record(
    *,
    object_type: str,
    object_id: int,
    channel: str,
    reader=None,
    via_account=None,
    object_label="",
    outcome: str = DetailReadOutcome.GRANTED,
    method: str = "",
    path: str = "",
    remote_addr: str | None = None,
) -> None:
    """Append one row to the access audit: one INSERT and nothing else, so it costs a read one round trip.

    Not @transaction.atomic: one statement is atomic by itself, it joins the caller's transaction when there is
    one, and a savepoint there would add two round trips to every read. `object_label` may be an expression the
    INSERT evaluates (a subquery by primary key, see tasks.selectors.task_business_key).
    """
    AccessAuditEntry.objects.create(
        object_type=object_type,
        object_id=object_id,
        object_label=object_label[:200] if isinstance(object_label, str) else object_label,
        channel=channel,
        outcome=outcome,
        reader=reader if reader is not None and reader.pk else None,
        via_account=via_account if via_account is not None and via_account.pk else None,
        method=method[:10],
        path=path[:500],
        remote_addr=remote_addr or None,
    )


ACCESS_AUDIT_PARTITIONS_SQL = "SELECT name FROM entitlements.ensure_access_audit_partitions(%s) AS name"
ACCESS_AUDIT_MONTHS_AHEAD = 2


def months_ahead_check(months_ahead) -> None:
    """How far ahead month partitions are made (entitlements.month_partitions_ensure): 0 to 24 months."""
    if isinstance(months_ahead, bool) or not isinstance(months_ahead, int) or not 0 <= months_ahead <= 24:
        raise InvalidInput(
            f"months ahead must be a whole number from 0 to 24 (got {months_ahead!r})",
            code="months_ahead_invalid",
            fields={"months_ahead": ["A whole number from 0 to 24."]},
        )


@transaction.atomic
def access_audit_partitions_ensure(*, months_ahead: int = ACCESS_AUDIT_MONTHS_AHEAD) -> list[str]:
    """Create the access audit's month partitions from this month to `months_ahead` months ahead where missing;
    the names of those created (none when they all exist).

    Through entitlements.ensure_access_audit_partitions, a SECURITY DEFINER function: the application role that
    runs this holds no DDL rights.
    """
    months_ahead_check(months_ahead)
    with connection.cursor() as cursor:
        cursor.execute(ACCESS_AUDIT_PARTITIONS_SQL, [months_ahead])
        return [name for (name,) in cursor.fetchall()]


def validate_capabilities(permissions) -> list[str]:
    valid = set(Capability.values) | set(Right.values)
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise InvalidInput(
            "permissions must be a list of capability names", fields={"permissions": ["Must be a list."]}
        )
    unknown = sorted(set(permissions) - valid)
    if unknown:
        raise InvalidInput(
            f"unknown capabilities: {', '.join(unknown)}",
            fields={"permissions": [f"Unknown: {', '.join(unknown)}. Allowed: {', '.join(sorted(valid))}."]},
        )
    return sorted(set(permissions))


@transaction.atomic
def role_save(
    *,
    role_code: str,
    name: str,
    queue_names: list[str],
    permissions: list[str],
    department=None,
    description: str = "",
    changed_by: User | None = None,
) -> WorkflowRole:
    """Create or update a role and its backing group; receivers of role_changed then grant the group its queue permissions.

    Rights (deploy_workflows, start_processes) on a role are privileges: only a superuser (or the system, with
    no `changed_by`) may change them, and each change is audited.
    """
    permissions = validate_capabilities(permissions)
    role, _ = roles_for_update().get_or_create(role_code=role_code, defaults={"name": name})
    old_rights = sorted(set(role.permissions or []) & set(Right.values))
    new_rights = sorted(set(permissions) & set(Right.values))
    if old_rights != new_rights:
        if changed_by is not None and not changed_by.is_superuser:
            raise PermissionDenied(
                f"only superusers may change the rights of role {role_code}", code="privilege_change_refused"
            )
        security_event_record(
            event_type=SecurityEvent.Type.PRIVILEGE_CHANGED,
            actor=changed_by,
            actor_username=changed_by.get_username() if changed_by else "system",
            details={"subject": f"role:{role_code}", "field": "rights", "old": old_rights, "new": new_rights},
        )
    role.name = name
    role.description = description
    role.queue_names = sorted(set(queue_names))
    role.permissions = permissions
    role.department = department
    if role.group_id is None:
        role.group, _ = Group.objects.get_or_create(name=f"role:{role_code}")
    role.save()
    signals.role_changed.send(sender=WorkflowRole, role=role)
    return role


def _transaction_now() -> datetime:
    """PostgreSQL's now(): the start of this transaction. A grant valid from it is in force at once for both askers
    of the access rule, access.py (at the call's time, later) and the database (row scope, claim-next: at now())."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


@transaction.atomic
def role_assignment_grant(
    *,
    user: User,
    role: WorkflowRole,
    granted_by: User | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    temporary_escalation: bool = False,
    reason: str = "",
    remote_addr: str | None = None,
) -> UserRoleAssignment:
    """Give `user` the role for a window of time (from the transaction's start unless `valid_from` says). A temporary
    escalation needs an end and a reason.

    A role holding rights (deploy_workflows, start_processes) is granted only by a superuser or the system.
    """
    rights = sorted(set(role.permissions or []) & set(Right.values))
    if rights and granted_by is not None and not granted_by.is_superuser:
        raise PermissionDenied(
            f"only superusers may grant role {role.role_code}: it holds {', '.join(rights)}",
            code="privilege_change_refused",
        )
    valid_from = valid_from or _transaction_now()
    if valid_until is not None and valid_until <= valid_from:
        raise InvalidInput(
            "valid_until must be after valid_from", fields={"valid_until": ["Must be after valid from."]}
        )
    if temporary_escalation and (valid_until is None or not reason.strip()):
        fields = {}
        if valid_until is None:
            fields["valid_until"] = ["A temporary escalation must end."]
        if not reason.strip():
            fields["reason"] = ["A temporary escalation needs a reason."]
        raise InvalidInput("a temporary escalation needs an end and a reason", fields=fields)
    assignment = UserRoleAssignment.objects.create(
        user=user,
        role=role,
        granted_by=granted_by,
        valid_from=valid_from,
        valid_until=valid_until,
        is_temporary_escalation=temporary_escalation,
        reason=reason,
    )
    security_event_record(
        event_type=SecurityEvent.Type.ROLE_GRANTED,
        actor=granted_by,
        actor_username=granted_by.get_username() if granted_by else "system",
        remote_addr=remote_addr,
        details={
            "assignment_id": assignment.pk,
            "user": user.get_username(),
            "role": role.role_code,
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat() if valid_until else None,
            "temporary_escalation": temporary_escalation,
            "reason": reason,
        },
    )
    return assignment


@transaction.atomic
def role_assignment_revoke(
    *, assignment_id: int, revoked_by: User | None = None, remote_addr: str | None = None
) -> UserRoleAssignment:
    """End an assignment now. Revoking twice is harmless and audited once."""
    try:
        assignment = role_assignments_for_update().get(pk=assignment_id)
    except UserRoleAssignment.DoesNotExist:
        raise NotFound(f"role assignment {assignment_id} does not exist") from None
    if assignment.revoked_at is not None:
        return assignment
    assignment.revoked_at = timezone.now()
    assignment.revoked_by = revoked_by
    assignment.save(update_fields=["revoked_at", "revoked_by"])
    security_event_record(
        event_type=SecurityEvent.Type.ROLE_REVOKED,
        actor=revoked_by,
        actor_username=revoked_by.get_username() if revoked_by else "system",
        remote_addr=remote_addr,
        details={
            "assignment_id": assignment.pk,
            "user": assignment.user.get_username(),
            "role": assignment.role.role_code,
        },
    )
    return assignment


@dataclass(frozen=True)
class IssuedToken:
    """A new API token: `key` is the only copy of the secret (the database keeps its digest); show it once."""

    token: ApiToken
    key: str
    replaced: int  # tokens of the user revoked to make room for this one
    held: int  # tokens the user holds now, this one included


@transaction.atomic
def api_token_create(
    *,
    user: User,
    created_by: User | None = None,
    name: str = "",
    read_only: bool = False,
    expires_in: timedelta | None = None,
    replace: bool = False,
) -> IssuedToken:
    """Issue one more API token for `user` (or, with `replace`, instead of all of theirs).

    It expires after `expires_in` (default API_TOKEN_TTL_DAYS); a read-only token may only read.
    """
    expires_in = timedelta(days=settings.API_TOKEN_TTL_DAYS) if expires_in is None else expires_in
    if expires_in <= timedelta(0):
        raise InvalidInput("a token must expire in the future", fields={"expires_in": ["Must be positive."]})
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise InvalidInput("token name too long", fields={"name": ["At most 100 characters."]})
    replaced = api_token_revoke(user=user, revoked_by=created_by) if replace else 0
    token, key = ApiToken.objects.create(
        user=user, expiry=expires_in, name=name, read_only=read_only, created_by=created_by
    )
    security_event_record(
        event_type=SecurityEvent.Type.TOKEN_CREATED,
        actor=created_by,
        actor_username=created_by.get_username() if created_by else "system",
        details={
            "user": user.get_username(),
            "name": name,
            "read_only": read_only,
            "expires_at": token.expiry.isoformat(),
            "replaced": replaced,
        },
    )
    return IssuedToken(token=token, key=key, replaced=replaced, held=ApiToken.objects.filter(user=user).count())


@transaction.atomic
def api_token_revoke(
    *, user: User, revoked_by: User | None = None, name: str | None = None, digests: list[str] | None = None
) -> int:
    """Revoke the user's API tokens (only those named `name`, or with these digests, when given); how many."""
    tokens = ApiToken.objects.filter(user=user)
    if name is not None:
        tokens = tokens.filter(name=name)
    if digests is not None:
        tokens = tokens.filter(digest__in=digests)
    revoked = list(api_tokens_for_update(tokens).values_list("name", "created"))
    if not revoked:
        return 0
    tokens.delete()
    security_event_record(
        event_type=SecurityEvent.Type.TOKEN_REVOKED,
        actor=revoked_by,
        actor_username=revoked_by.get_username() if revoked_by else "system",
        details={
            "user": user.get_username(),
            "count": len(revoked),
            "tokens": [{"name": n, "created": c.isoformat()} for n, c in revoked],
        },
    )
    return len(revoked)


_TALLY_FAILURE = """
INSERT INTO entitlements.auth_failure_tallies AS t
    (remote_addr, window_start, failures, throttled, last_username, last_path, last_at)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (remote_addr, window_start) DO UPDATE SET
    failures = t.failures + EXCLUDED.failures,
    throttled = t.throttled + EXCLUDED.throttled,
    last_username = CASE WHEN EXCLUDED.failures > 0 THEN EXCLUDED.last_username ELSE t.last_username END,
    last_path = EXCLUDED.last_path,
    last_at = EXCLUDED.last_at
RETURNING failures
"""


def auth_failure_clock() -> datetime:
    """The time that places a failed authentication in its audit window (tests pin it to stay inside one window)."""
    return timezone.now()


@transaction.atomic
def auth_failure_record(
    *,
    remote_addr: str | None,
    username: str = "",
    path: str = "",
    details: dict | None = None,
    throttled: bool = False,
) -> SecurityEvent | None:
    """Count a failed authentication (or, with `throttled`, one refused before its credentials were checked) of
    `remote_addr` in its audit window; the window's first failure also goes to the audit as LOGIN_FAILURE.

    The audit is append-only, so a flood of bad credentials would grow it by a row a request; the tally row
    (AuthFailureTally, one per address and window) keeps the count instead. Returns the audit row, if one was written.
    """
    now = auth_failure_clock()
    window = settings.AUTH_FAILURE_AUDIT_WINDOW_SECONDS
    window_start = datetime.fromtimestamp(now.timestamp() // window * window, tz=UTC)
    username, path = username[:150], path[:500]
    with connection.cursor() as cursor:
        cursor.execute(
            _TALLY_FAILURE,
            [remote_addr or None, window_start, 0 if throttled else 1, 1 if throttled else 0, username, path, now],
        )
        (failures,) = cursor.fetchone()
    if throttled or failures != 1:
        return None
    return security_event_record(
        event_type=SecurityEvent.Type.LOGIN_FAILURE,
        actor_username=username,
        remote_addr=remote_addr,
        path=path,
        details={
            **(details or {}),
            "later_failures_counted_in": "entitlements.auth_failure_tallies",
            "window_start": window_start.isoformat(),
        },
    )
