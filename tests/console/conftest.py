"""Fixtures of the supervisor console tests: the browser fixtures of the caseworker pages are reused."""

# The browser fixtures of the caseworker pages: a live server over committed data and Debian's chromium.
from tests.pages.conftest import browser_page, chromium, live_server_url  # noqa: E402,F401


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives Debian's chromium through Playwright against a live server")
