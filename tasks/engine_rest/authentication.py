"""How Camunda clients authenticate here: HTTP basic with the account's password, or `Bearer <api token>` (the
camunda-external-task-client's auth_bearer), besides our `Token <key>`; each with act-as, as entitlements' own."""

from __future__ import annotations

from rest_framework import authentication

from entitlements.authentication import TokenAuthentication, act_as


class BasicAuthentication(authentication.BasicAuthentication):
    """DRF's HTTP basic (Django's authenticate, so login throttling applies), with act-as and the row scope."""

    www_authenticate_realm = "engine-rest"

    def authenticate(self, request):
        return act_as(request, super().authenticate(request))


class BearerTokenAuthentication(TokenAuthentication):
    """An API token sent as `Authorization: Bearer <key>`."""

    def authenticate_header(self, request):
        return "Bearer"
