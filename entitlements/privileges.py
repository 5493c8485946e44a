"""Privilege changes (superuser, staff, groups, permissions, act-as scope): only superusers, each one audited.

Model and m2m signals rather than form hooks, so admin, shell, API and services all pass here. The acting user
comes from the request being served (ActingRequestMiddleware keeps it in a ContextVar; DRF sets the
authenticated user on the same request later, so it is read when the change happens); without a request
(shell, management commands, Celery) the change is the system's, allowed and recorded as "system".
"""

from __future__ import annotations

from contextvars import ContextVar

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from core.errors import PermissionDenied

from .models import SecurityEvent, User

_serving: ContextVar = ContextVar("entitlements_serving_request", default=None)

SYSTEM = "system"
USER_PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "act_as_staff")


class PrivilegeChangeRefused(PermissionDenied, DjangoPermissionDenied):
    """403 in the API (a domain PermissionDenied) and in admin and pages (Django's PermissionDenied)."""

    code = "privilege_change_refused"


class ActingRequestMiddleware:
    """Remember the request being served, so that privilege signals know who acts."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _serving.set(request)
        try:
            return self.get_response(request)
        finally:
            _serving.reset(token)


def _acting() -> tuple[object | None, bool]:
    """(request, whether whoever acts in it is a superuser). No request: (None, True), the system acts."""
    request = _serving.get()
    if request is None:
        return None, True
    user = getattr(request, "user", None)
    via = getattr(request, "via_account", None)
    superuser = all(
        who is not None and who.is_authenticated and who.is_active and who.is_superuser
        for who in (user, *((via,) if via is not None else ()))
    )
    return request, superuser


def _refuse_unless_superuser(what: str) -> None:
    request, superuser = _acting()
    if request is not None and not superuser:
        raise PrivilegeChangeRefused(f"only superusers may change {what}")


def _record(*, subject: str, field: str, old, new) -> None:
    from .authentication import client_address
    from .services import security_event_record

    request = _serving.get()
    user = getattr(request, "user", None) if request is not None else None
    via = getattr(request, "via_account", None) if request is not None else None
    actor = via or (user if user is not None and user.is_authenticated else None)
    security_event_record(
        event_type=SecurityEvent.Type.PRIVILEGE_CHANGED,
        actor=actor,
        actor_username=actor.get_username() if actor is not None else SYSTEM,
        on_behalf_of_username=user.get_username() if via is not None and user is not None else "",
        remote_addr=client_address(request) if request is not None else None,
        path=request.path if request is not None else "",
        details={"subject": subject, "field": field, "old": old, "new": new},
    )


# --- flags on the user row -----------------------------------------------------------------------------------------


@receiver(pre_save, sender=User, dispatch_uid="privileges_user_flags_check")
def check_user_flags(sender, instance: User, raw=False, update_fields=None, **kwargs):
    if raw or (update_fields is not None and not set(update_fields) & set(USER_PRIVILEGE_FIELDS)):
        instance._privilege_flags_before = None
        return
    before = None
    if instance.pk is not None:
        before = User.objects.filter(pk=instance.pk).values(*USER_PRIVILEGE_FIELDS).first()
    old = before or {field: False for field in USER_PRIVILEGE_FIELDS}
    changed = [field for field in USER_PRIVILEGE_FIELDS if getattr(instance, field) != old[field]]
    if changed:
        _refuse_unless_superuser(", ".join(changed))
    instance._privilege_flags_before = {field: old[field] for field in changed}


@receiver(post_save, sender=User, dispatch_uid="privileges_user_flags_record")
def record_user_flags(sender, instance: User, raw=False, **kwargs):
    changed = getattr(instance, "_privilege_flags_before", None)
    instance._privilege_flags_before = None
    for field, old in (changed or {}).items():
        _record(subject=f"user:{instance.get_username()}", field=field, old=old, new=getattr(instance, field))


# --- many-to-many privileges ---------------------------------------------------------------------------------------


def _permission_labels(queryset) -> list[str]:
    return sorted(f"{app}.{codename}" for app, codename in queryset.values_list("content_type__app_label", "codename"))


# through model -> (subject model, field on the subject, how the subject is named, labels of the subject's values)
def _relations() -> dict:
    return {
        User.groups.through: (
            User,
            "groups",
            lambda u: f"user:{u.get_username()}",
            lambda u: sorted(u.groups.values_list("name", flat=True)),
        ),
        User.user_permissions.through: (
            User,
            "user_permissions",
            lambda u: f"user:{u.get_username()}",
            lambda u: _permission_labels(u.user_permissions.all()),
        ),
        Group.permissions.through: (
            Group,
            "permissions",
            lambda g: f"group:{g.name}",
            lambda g: _permission_labels(g.permissions.all()),
        ),
        User.act_as_departments.through: (
            User,
            "act_as_departments",
            lambda u: f"user:{u.get_username()}",
            lambda u: sorted(u.act_as_departments.values_list("dept_code", flat=True)),
        ),
        User.act_as_roles.through: (
            User,
            "act_as_roles",
            lambda u: f"user:{u.get_username()}",
            lambda u: sorted(u.act_as_roles.values_list("role_code", flat=True)),
        ),
    }


def _subjects(subject_model, instance, reverse: bool, pk_set, field: str) -> list:
    if not reverse:
        return [instance]
    if pk_set is not None:
        return list(subject_model.objects.filter(pk__in=pk_set))
    return list(subject_model.objects.filter(**{field: instance}))  # clear from the other side


@receiver(m2m_changed, dispatch_uid="privileges_m2m")
def check_and_record_m2m(sender, instance, action, reverse, model, pk_set, **kwargs):
    relation = _relations().get(sender)
    if relation is None:
        return
    subject_model, field, name, labels = relation
    if action in ("pre_add", "pre_remove", "pre_clear"):
        if action != "pre_clear" and not pk_set:
            return
        _refuse_unless_superuser(field.replace("_", " "))
        instance._privileges_before = [
            (subject, labels(subject)) for subject in _subjects(subject_model, instance, reverse, pk_set, field)
        ]
        return
    before = getattr(instance, "_privileges_before", None)
    instance._privileges_before = None
    for subject, old in before or ():
        new = labels(subject)
        if new != old:
            _record(subject=name(subject), field=field, old=old, new=new)
