"""Django's login signals, django-axes' lockouts and the API's refusals, recorded in the security audit."""

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.utils import timezone
from rest_framework import exceptions

from core.errors import NotFound, PermissionDenied
from core.signals import api_exception_raised

from .authentication import ActAsRefused, ReadOnlyTokenRefused, client_address
from .models import SecurityEvent
from .services import auth_failure_record, security_event_record


@receiver(user_logged_in)
def record_login(sender, request, user, **kwargs):
    security_event_record(
        event_type=SecurityEvent.Type.LOGIN_SUCCESS,
        actor=user,
        remote_addr=client_address(request) if request else None,
        path=request.path if request else "",
    )


@receiver(user_logged_out)
def record_logout(sender, request, user, **kwargs):
    if user is not None:
        security_event_record(
            event_type=SecurityEvent.Type.LOGOUT,
            actor=user,
            remote_addr=client_address(request) if request else None,
            path=request.path if request else "",
        )


@receiver(user_login_failed)
def record_login_failure(sender, credentials, request=None, **kwargs):
    # credentials has the password scrubbed by Django; keep only the username. Counted per address and window:
    # only the window's first failure becomes an audit row.
    auth_failure_record(
        username=str(credentials.get("username", "")),
        remote_addr=client_address(request) if request else None,
        path=request.path if request else "",
    )


@receiver(user_locked_out)
def record_lockout(sender, request, username, ip_address, **kwargs):
    # axes signals again on every attempt during a lockout: audit the lockout once.
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    username = str(username or "")[:150]
    if SecurityEvent.objects.filter(
        event_type=SecurityEvent.Type.LOGIN_LOCKED_OUT,
        actor_username=username,
        remote_addr=ip_address,
        created_at__gte=since,
    ).exists():
        return
    security_event_record(
        event_type=SecurityEvent.Type.LOGIN_LOCKED_OUT,
        actor_username=username,
        remote_addr=ip_address,
        path=request.path if request else "",
        details={
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "cool_off_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
        },
    )


@receiver(api_exception_raised)
def record_api_denial(sender, exc, context, **kwargs):
    """An API call refused for want of authentication or permission (a 404 that hides a task counts too)."""
    request = context.get("request")
    if request is None:
        return
    user = getattr(request, "user", None)
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    if isinstance(exc, exceptions.AuthenticationFailed):
        # Counted per address and window; only the window's first failure becomes an audit row.
        auth_failure_record(
            remote_addr=client_address(request),
            path=request.path,
            details={"method": request.method, "reason": str(exc.detail)},
        )
        return
    if isinstance(exc, (exceptions.PermissionDenied, PermissionDenied)) and not isinstance(
        exc, (ActAsRefused, ReadOnlyTokenRefused)
    ):
        event_type = SecurityEvent.Type.PERMISSION_DENIED
    elif isinstance(exc, NotFound) and exc.denial:
        event_type = SecurityEvent.Type.PERMISSION_DENIED
    else:
        return
    via = getattr(request, "via_account", None)
    security_event_record(
        event_type=event_type,
        actor=via or (user if authenticated else None),
        on_behalf_of_username=user.get_username() if via and authenticated else "",
        remote_addr=client_address(request),
        path=request.path,
        details={
            "method": request.method,
            "reason": str(getattr(exc, "detail", exc)),
            **(getattr(exc, "denial", None) or {}),
        },
    )
