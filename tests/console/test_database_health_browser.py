"""A supervisor sees a blocking lock on the database health page, in a real browser against a live server."""

import pytest
from playwright.sync_api import expect

from tests.conftest import DEMO_PASSWORD
from tests.console.locks import BLOCKER_SQL, WAITER_SQL, lock_wait
from tests.pages.conftest import screenshot

pytestmark = pytest.mark.browser


def test_a_supervisor_sees_who_waits_for_whom_and_both_statements(live_server_url, browser_page):
    page = browser_page
    page.goto(f"{live_server_url}/accounts/login/")
    page.get_by_label("Username").fill("supervisor")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server_url}/inbox/")
    page.get_by_role("link", name="Supervisor console").click()

    with lock_wait() as wait:
        page.get_by_role("link", name="Database health").click()

        expect(page.get_by_role("heading", name="Database health", exact=True)).to_be_visible()
        row = page.locator(
            f'#db-blocking tr.blocked-session[data-waiting-pid="{wait.waiter_pid}"]'
            f'[data-blocking-pid="{wait.blocker_pid}"]'
        )
        expect(row).to_have_count(1)
        expect(row.locator("td.waiting-statement code")).to_have_text(WAITER_SQL)
        expect(row.locator("td.blocking-statement code")).to_have_text(BLOCKER_SQL)
        expect(row).to_contain_text("idle in transaction")
        expect(page.locator("#db-slow")).to_contain_text("pg_stat_statements not enabled")
        screenshot(page, "database_health.png")

    page.reload()
    expect(page.locator("#db-blocking")).to_contain_text("No session waits for a lock another holds.")
