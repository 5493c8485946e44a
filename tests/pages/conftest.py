"""Fixtures for the caseworker pages: logged-in clients, a real server over committed data, and a browser."""

import os
import tempfile
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import DEMO_PASSWORD  # noqa: F401  (re-exported for the browser tests)

DEMO_BPMN = Path(__file__).resolve().parents[2] / "tasks" / "bpmn" / "onecms_case_handling.bpmn"
# Screenshots go to a temporary folder, so a test run leaves the checkout clean; the README's images are refreshed
# on purpose with SCREENSHOTS_DIR=docs/screenshots bash bin/test -m browser.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "workflow-screenshots")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives Debian's chromium through Playwright against a live server")


@pytest.fixture
def page_as():
    """A Django test client logged in as the given user (CSRF is tested on its own, with checks enforced)."""

    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def deployed_demo_workflow(supervisor_sam):
    from tasks.bpmn.workflows import definition_deploy

    return definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())


def open_fraud_case(user, title="Invoices forged at the north depot"):
    from cases.services import case_open

    return case_open(
        user=user,
        title=title,
        description="Reported by the depot manager.",
        allegations=[
            {"type": "FRAUD", "description": "Supplier invoices were altered before payment.", "date": "2026-01-15"},
        ],
    )


@pytest.fixture
def live_server_url(committed_db):
    """A real threaded HTTP server on 127.0.0.1 over the committed test database, serving static files.

    Not pytest-django's live_server: its TRUNCATE teardown is refused by the security audit table.
    """
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread

    class PageServerThread(LiveServerThread):
        def _create_server(self, connections_override=None):
            server = super()._create_server(connections_override)
            # Non-daemon request threads are joined by server_close(), so each has closed its database
            # connection before the test database is cleaned up or dropped.
            server.daemon_threads = False
            return server

    server = PageServerThread("127.0.0.1", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.terminate()
        server.join(timeout=10)


@pytest.fixture
def chromium(monkeypatch):
    """Debian's chromium, never a downloaded browser. One per test: Playwright's sync API keeps an event loop
    running in this thread, so the test's own ORM calls need Django's async-safety check relaxed, and only
    for as long as that loop runs."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # While the loop runs, Django keeps the test's connection in that context's storage: close it here,
            # or it outlives the test and blocks dropping the test database.
            from django.db import connections

            connections.close_all()


@pytest.fixture
def browser_page(chromium):
    """A fresh browser context (own cookies) per test; a JS dialog is recorded, so a test can assert none fired."""
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.dialogs = []

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.set_default_timeout(15_000)
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
