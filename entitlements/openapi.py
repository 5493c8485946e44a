"""OpenAPI descriptions of our authentication classes (drf-spectacular registers them on import)."""
from drf_spectacular.authentication import SessionScheme, TokenScheme


class ActAsTokenScheme(TokenScheme):
    target_class = "entitlements.authentication.TokenAuthentication"


class ActAsSessionScheme(SessionScheme):
    target_class = "entitlements.authentication.SessionAuthentication"
