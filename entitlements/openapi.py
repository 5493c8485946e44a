"""OpenAPI descriptions of our authentication classes (drf-spectacular registers them on import)."""

from drf_spectacular.authentication import SessionScheme, TokenScheme
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class ActAsTokenScheme(TokenScheme):
    target_class = "entitlements.authentication.TokenAuthentication"

    def get_security_definition(self, auto_schema):
        # knox's authentication names its header prefix by a method, not DRF's `keyword` attribute.
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=self.target.authenticate_header(None)
        )


class ActAsSessionScheme(SessionScheme):
    target_class = "entitlements.authentication.SessionAuthentication"
