"""API authentication: token (hashed, expiring, optionally read-only) or session, plus act-as for integration
accounts holding the act-as permission.

Identity comes only from the credentials. `X-User-Id` and similar headers are ignored. An integration account
with `entitlements.act_on_behalf` may send `X-On-Behalf-Of: <username>`; the request then runs as that user
(their queues, their checks) while `request.via_account` keeps the integration, and each use is audited.
"""

from __future__ import annotations

from datetime import timedelta
from hmac import compare_digest

from django.db.models import Q
from django.utils import timezone
from knox import auth as knox_auth
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework import authentication, exceptions, permissions

from .models import ApiToken, SecurityEvent, User
from .row_scope import request_row_scope_set
from .services import auth_failure_record, security_event_record
from .throttling import FailedTokenLimit

ON_BEHALF_OF_HEADER = "HTTP_X_ON_BEHALF_OF"
ACT_AS_PERMISSION = "entitlements.act_on_behalf"


class ActAsRefused(exceptions.PermissionDenied):
    """Raised after the refusal was audited, so the error handler does not audit it twice."""


def client_address(request) -> str | None:
    """The peer address. Behind a proxy, configure the proxy to set REMOTE_ADDR (e.g. gunicorn --forwarded-allow-ips)."""
    return request.META.get("REMOTE_ADDR") or None


def denial_record(*, request, error, surface: str) -> None:
    """Write a refused look at an object outside the caller's queues (an error carrying `denial`) to the audit.

    `surface` names where it happened ("page", "admin"); absent objects (no `denial`) are not audited.
    """
    denial = getattr(error, "denial", None)
    if not denial:
        return
    security_event_record(
        event_type=SecurityEvent.Type.PERMISSION_DENIED,
        actor=request.user,
        remote_addr=client_address(request),
        path=request.path,
        details={"method": request.method, "reason": error.detail, surface: True, **denial},
    )


def act_as(request, authenticated: tuple | None) -> tuple | None:
    """Swap the authenticated integration for the user it names, or refuse.

    The account needs `entitlements.act_on_behalf` and the user inside the scope configured on the account.
    """
    from . import access

    if authenticated is None:
        return None
    account, auth = authenticated
    target_name = request.META.get(ON_BEHALF_OF_HEADER, "").strip()
    django_request = getattr(request, "_request", request)
    django_request.via_account = None
    if not target_name:
        request_row_scope_set(account)
        return authenticated
    denial = None
    if not account.has_perm(ACT_AS_PERMISSION):
        denial = "this account may not act on behalf of other users"
    else:
        target = User.objects.filter(username=target_name, is_active=True).first()
        if target is None:
            denial = "no active user by that name to act for"
        else:
            denial = access.act_as_refusal(account=account, target=target)  # only inside the account's scope
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
    request_row_scope_set(target)  # the request reaches the rows of the user it acts for
    return target, auth


class ReadOnlyTokenRefused(exceptions.PermissionDenied):
    """A read-only token sent a request that writes; raised after the refusal was audited."""

    default_detail = "This API token is read-only: it may only GET, HEAD or OPTIONS."
    default_code = "token_read_only"


class FailedTokensThrottled(exceptions.Throttled):
    default_detail = "Too many failed token authentications from this address."


INVALID_TOKEN = "Invalid token."
# Longer than any key we issue (knox's 64 characters, DRF's 40): not worth hashing.
MAX_KEY_LENGTH = 200
# last_used_at is written at most this often per token: not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenAuthentication(knox_auth.TokenAuthentication):
    """`Authorization: Token <key>`, with act-as. `request.auth` is the ApiToken.

    django-rest-knox parses the header; the lookup is ours (knox's deletes the user's expired tokens on every
    request and answers an expired one as invalid): candidates by the key's first characters, the SHA-512 digest
    compared in constant time, then expiry (401 `token_expired`), active user, read-only scope (403
    `token_read_only`). Before any lookup, an address past its failed-token limit gets 429 (entitlements.throttling).
    """

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.authenticate_header(request).lower().encode():
            return None
        address = client_address(request)
        limit = FailedTokenLimit()
        wait = limit.wait(address)
        if wait is not None:
            auth_failure_record(remote_addr=address, path=request.path, throttled=True)
            raise FailedTokensThrottled(wait=wait)
        try:
            user, token = super().authenticate(request)
        except exceptions.AuthenticationFailed:
            limit.record_failure(address)
            raise
        if token.read_only and request.method not in permissions.SAFE_METHODS:
            security_event_record(
                event_type=SecurityEvent.Type.PERMISSION_DENIED,
                actor=user,
                remote_addr=address,
                path=request.path,
                details={"method": request.method, "reason": ReadOnlyTokenRefused.default_detail, "token": token.name},
            )
            raise ReadOnlyTokenRefused()
        return act_as(request, (user, token))

    def authenticate_credentials(self, token: bytes):
        try:
            key = token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN) from None
        # PostgreSQL refuses NUL in text: such a key is simply invalid, never a database error.
        if "\x00" in key or len(key) > MAX_KEY_LENGTH:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        digest = hash_token(key)
        candidates = ApiToken.objects.filter(token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH]).select_related("user")
        for candidate in candidates:
            if compare_digest(digest, candidate.digest):
                return self.validate_user(candidate)
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)

    def validate_user(self, auth_token: ApiToken):
        now = timezone.now()
        if auth_token.expiry is not None and auth_token.expiry <= now:
            raise exceptions.AuthenticationFailed(
                f"Token expired at {auth_token.expiry:%Y-%m-%d %H:%M} UTC; ask for a new one.", code="token_expired"
            )
        if not auth_token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if auth_token.last_used_at is None or now - auth_token.last_used_at >= LAST_USED_RESOLUTION:
            # Conditional, so concurrent requests of one token write it once.
            ApiToken.objects.filter(pk=auth_token.pk).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
            ).update(last_used_at=now)
            auth_token.last_used_at = now
        return auth_token.user, auth_token


class SessionAuthentication(authentication.SessionAuthentication):
    """Browser session (CSRF enforced), with act-as."""

    def authenticate(self, request):
        return act_as(request, super().authenticate(request))
