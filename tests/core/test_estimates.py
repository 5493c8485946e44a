"""core/estimates.py: a list's planner estimate kept in the cache a while, per key; computed every time when off,
and when the cache cannot be reached (the page still answers)."""

import logging

from django.test import override_settings

from core.estimates import remembered_estimate

UNREACHABLE_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


class Planner:
    """Counts the estimates it is asked for, answering a new figure each time."""

    def __init__(self):
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return 1000 * self.calls


def test_an_estimate_is_kept_per_key():
    planner = Planner()

    figures = [remembered_estimate(key, planner) for key in ("queues a", "queues a", "queues b", "queues a")]

    assert figures == [1000, 1000, 2000, 1000] and planner.calls == 2


def test_off_plans_every_time(settings):
    settings.LIST_ESTIMATE_CACHE_SECONDS = 0
    planner = Planner()

    assert [remembered_estimate("queues a", planner) for _ in range(2)] == [1000, 2000]


@override_settings(CACHES=UNREACHABLE_CACHE)
def test_an_unreachable_cache_plans_the_estimate_and_says_so(caplog):
    planner = Planner()

    with caplog.at_level(logging.WARNING, logger="core.estimates"):
        figures = [remembered_estimate("queues a", planner) for _ in range(2)]

    assert figures == [1000, 2000]
    assert "the cache is unavailable" in caplog.text
