"""Django's login signals, recorded in the security audit."""
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .authentication import client_address
from .models import SecurityEvent
from .services import security_event_record


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
    # credentials has the password scrubbed by Django; keep only the username.
    security_event_record(
        event_type=SecurityEvent.Type.LOGIN_FAILURE,
        actor_username=str(credentials.get("username", ""))[:150],
        remote_addr=client_address(request) if request else None,
        path=request.path if request else "",
    )
