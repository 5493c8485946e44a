"""API rate limits: DRF's throttles per account and per address, and a limit on failed token authentications.

State lives in Django's cache (Redis with REDIS_URL, local memory otherwise). A cache that cannot be reached lets
the request through and logs it: a rate limit guards against floods, it is not an access rule, and a cache outage
must not turn every API call into a 500. Rates come from settings (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]);
a rate of None turns that limit off.

FailedTokenLimit is written by hand: DRF's throttles run after authentication and count every request they see,
and django-axes guards Django's login (`authenticate()`), which DRF's token check never calls.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache as default_cache
from rest_framework import throttling
from rest_framework.settings import api_settings

log = logging.getLogger(__name__)


PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int | None, int | None]:
    """ "20/minute" -> (20, 60); None -> (None, None), as DRF reads its rates."""
    if rate is None:
        return None, None
    count, _, period = rate.partition("/")
    return int(count), PERIOD_SECONDS[period[0]]


class _CacheOutageLetsThrough:
    def get_rate(self):
        # Read at each request, not once at import (DRF's THROTTLE_RATES), so changed settings apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache backend's own errors (redis.ConnectionError, timeouts) have no common base
            log.warning("API throttle %s skipped: the cache is unavailable", self.scope, exc_info=True)
            return True

    def get_ident(self, request):
        # The peer address, never a client-supplied X-Forwarded-For (which DRF's own get_ident would trust).
        from .authentication import client_address

        return client_address(request) or "unknown"


class AccountRateThrottle(_CacheOutageLetsThrough, throttling.SimpleRateThrottle):
    """Requests per authenticated account; an integration acting for users counts as itself, not as each user."""

    scope = "account"

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        account = getattr(request, "via_account", None) or user
        return self.cache_format % {"scope": self.scope, "ident": account.pk}


class AnonymousAddressRateThrottle(_CacheOutageLetsThrough, throttling.AnonRateThrottle):
    """Requests per address for calls without credentials (the few endpoints that allow them)."""

    scope = "anonymous"


class FailedTokenLimit:
    """Failed token authentications per address, in fixed windows of the rate's period.

    DRF's throttles run after authentication, so a request with a bad token never reaches them; the token
    authentication asks this before it looks a token up (`wait`) and tells it of each failure (`record_failure`).
    """

    scope = "bad_token"
    cache = default_cache
    timer = time.time

    def __init__(self):
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        self.limit, self.period = parse_rate(rate)

    def _window(self, address: str | None) -> tuple[str, float]:
        now = self.timer()
        start = now - now % self.period
        return f"throttle_{self.scope}_{address or 'unknown'}_{int(start)}", start + self.period - now

    def wait(self, address: str | None) -> float | None:
        """Seconds until `address` may try a token again, or None if it may now."""
        if self.limit is None:
            return None
        key, remaining = self._window(address)
        try:
            failures = self.cache.get(key, 0)
        except Exception:
            log.warning("failed-token limit skipped: the cache is unavailable", exc_info=True)
            return None
        return remaining if failures >= self.limit else None

    def record_failure(self, address: str | None) -> None:
        if self.limit is None:
            return
        key, remaining = self._window(address)
        try:
            if not self.cache.add(key, 1, timeout=int(remaining) + 1):
                self.cache.incr(key)
        except ValueError:
            pass  # the window's key expired between add and incr: the next window has begun
        except Exception:
            log.warning("failed-token limit not counted: the cache is unavailable", exc_info=True)
