"""API authentication: token or session, plus act-as for integration accounts holding the act-as permission.

Identity comes only from the credentials. `X-User-Id` and similar headers are ignored. An integration account
with `entitlements.act_on_behalf` may send `X-On-Behalf-Of: <username>`; the request then runs as that user
(their queues, their checks) while `request.via_account` keeps the integration, and each use is audited.
"""
from __future__ import annotations

import functools

from django.db import connection
from rest_framework import authentication, exceptions

from workflow_project.db import RowReader, fetch_one_read_only, row_reader

from .models import SecurityEvent, User
from .services import security_event_record
from .token_memory import token_memory

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
    return target, auth


def user_for_token(key: str) -> User | None:
    """The user an API token belongs to, or None: one query (none when the connection remembers it), one model
    instance.

    DRF's lookup (`Token.objects.select_related("user").get(key=...)`) builds the ORM query and two model
    instances on every request: 0.7 ms of a claim-next call, against 0.2 ms for this statement. The statement is
    built from the models' metadata, so it follows the user model's columns.
    """
    statement, reader = _token_user_statement()
    memory = token_memory(connection)
    if memory is not None and (row := memory.get(key)) is not None:
        connection.health_check_done = True  # token_memory() read the connection: it is open
        return reader.instance(row)
    generation = memory.generation if memory is not None else None
    row = fetch_one_read_only(statement, [key])  # also the request's connection health check
    if row is None:
        return None
    if memory is not None and memory.raw is connection.connection:  # not if the lookup had to reconnect
        memory.remember(key, row, looked_up_in_generation=generation)
    return reader.instance(row)


@functools.cache
def _token_user_statement() -> tuple[str, RowReader]:
    from rest_framework.authtoken.models import Token

    reader = row_reader(User)
    quote = connection.ops.quote_name
    statement = (
        f"SELECT {reader.columns_of('u')} FROM {quote(User._meta.db_table)} u JOIN {quote(Token._meta.db_table)} t"
        + f" ON t.user_id = u.{quote(User._meta.pk.column)} WHERE t.key = %s"
    )
    return statement, reader


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, with act-as. `request.auth` is the token's key."""

    def authenticate(self, request):
        return act_as(request, super().authenticate(request))

    def authenticate_credentials(self, key):
        # PostgreSQL refuses NUL in text: such a key is simply invalid, never a database error.
        user = None if "\x00" in key else user_for_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, key


class SessionAuthentication(authentication.SessionAuthentication):
    """Browser session (CSRF enforced), with act-as."""

    def authenticate(self, request):
        return act_as(request, super().authenticate(request))
