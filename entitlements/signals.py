"""Django's login signals and django-axes' lockouts, recorded in the security audit."""
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.utils import timezone

from .authentication import client_address
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
        event_type=SecurityEvent.Type.LOGIN_LOCKED_OUT, actor_username=username, remote_addr=ip_address,
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
