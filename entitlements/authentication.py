"""API authentication: token or session, plus act-as for integration accounts holding the act-as permission.

Identity comes only from the credentials. `X-User-Id` and similar headers are ignored. An integration account
with `entitlements.act_on_behalf` may send `X-On-Behalf-Of: <username>`; the request then runs as that user
(their queues, their checks) while `request.via_account` keeps the integration, and each use is audited.
"""
from __future__ import annotations

from rest_framework import authentication, exceptions

from .models import SecurityEvent, User
from .services import security_event_record

ON_BEHALF_OF_HEADER = "HTTP_X_ON_BEHALF_OF"
ACT_AS_PERMISSION = "entitlements.act_on_behalf"


class ActAsRefused(exceptions.PermissionDenied):
    """Raised after the refusal was audited, so the error handler does not audit it twice."""


def client_address(request) -> str | None:
    """The peer address. Behind a proxy, configure the proxy to set REMOTE_ADDR (e.g. gunicorn --forwarded-allow-ips)."""
    return request.META.get("REMOTE_ADDR") or None


def act_as(request, authenticated: tuple | None) -> tuple | None:
    """Swap the authenticated integration for the user it names, or refuse."""
    if authenticated is None:
        return None
    account, auth = authenticated
    target_name = request.META.get(ON_BEHALF_OF_HEADER, "").strip()
    django_request = getattr(request, "_request", request)
    django_request.via_account = None
    if not target_name:
        return authenticated
    denial = None
    if not account.has_perm(ACT_AS_PERMISSION):
        denial = "this account may not act on behalf of other users"
    else:
        target = User.objects.filter(username=target_name, is_active=True).first()
        if target is None:
            denial = "no active user by that name to act for"
    if denial:
        security_event_record(
            event_type=SecurityEvent.Type.PERMISSION_DENIED,
            actor=account,
            on_behalf_of_username=target_name,
            remote_addr=client_address(request),
            path=request.path,
            details={"reason": denial, "header": "X-On-Behalf-Of"},
        )
        raise ActAsRefused(f"X-On-Behalf-Of refused: {denial}.")
    security_event_record(
        event_type=SecurityEvent.Type.ACT_AS,
        actor=account,
        on_behalf_of_username=target.get_username(),
        remote_addr=client_address(request),
        path=request.path,
        details={"method": request.method},
    )
    django_request.via_account = account
    return target, auth


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, with act-as."""

    def authenticate(self, request):
        return act_as(request, super().authenticate(request))


class SessionAuthentication(authentication.SessionAuthentication):
    """Browser session (CSRF enforced), with act-as."""

    def authenticate(self, request):
        return act_as(request, super().authenticate(request))
