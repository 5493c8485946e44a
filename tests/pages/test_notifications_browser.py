"""A caseworker sees, in a real browser, the notification of a task pushed to them, and opening it reads it."""

import re

import pytest
from playwright.sync_api import expect

from queues.models import WorkflowQueue

from .conftest import screenshot
from .test_browser import log_in, standalone_task

pytestmark = pytest.mark.browser


@pytest.fixture
def legal_review_pushes(committed_db):
    """Legal review gives its tasks out (least loaded) instead of waiting for claims; carol is its caseworker."""
    WorkflowQueue.objects.filter(queue_name="legal-review").update(assignment_mode="PUSH")
    try:
        yield
    finally:
        WorkflowQueue.objects.filter(queue_name="legal-review").update(assignment_mode="PULL")


def test_a_task_pushed_to_carol_shows_on_her_bell_and_opening_it_reads_it(
    live_server_url, browser_page, legal_review_pushes
):
    page = browser_page
    task = standalone_task("legal-review", "Review the settlement draft")
    assert task.assignee.username == "carol"

    log_in(page, live_server_url, "carol")
    bell = page.get_by_role("link", name=re.compile(r"^Notifications"))
    expect(bell).to_have_accessible_name("Notifications, 1 unread")
    expect(page.locator(".bell-count")).to_have_text("1")

    bell.click()
    expect(page).to_have_url(f"{live_server_url}/notifications/")
    expect(page.locator(".notification-state")).to_have_text("unread")
    screenshot(page, "notifications.png")
    page.get_by_role("button", name=re.compile(r"Review the settlement draft")).click()

    expect(page).to_have_url(f"{live_server_url}/tasks/{task.pk}/")
    expect(page.get_by_role("heading", name="Review the settlement draft")).to_be_visible()
    expect(bell).to_have_accessible_name("Notifications, 0 unread")
    expect(page.locator(".bell-count")).to_have_text("0")

    bell.click()
    expect(page.locator(".notification-state")).to_have_text("read")
    assert page.dialogs == []
