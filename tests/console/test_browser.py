"""The supervisor console in a real browser (Debian's chromium through Playwright) against a live server."""

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from entitlements.models import User
from queues.models import WorkflowQueue
from tasks.models import TaskEventType, TaskHistory, WorkflowTask
from tasks.sla.maintenance import refresh_dashboards
from tests.conftest import DEMO_PASSWORD
from tests.pages.conftest import screenshot

pytestmark = pytest.mark.browser


def intake_task(name, **fields):
    from tasks.services import task_insert

    with transaction.atomic():
        return task_insert(queue=WorkflowQueue.objects.get(queue_name="intake"), name=name, **fields)


def backlog_done_by_alice(count):
    """Some work done today, so the dashboard has throughput, SLA and caseworker figures to show."""
    from tasks.services import task_claim, task_complete

    alice = User.objects.get(username="alice")
    for i in range(count):
        task = intake_task(f"Finished review {i}")
        task_claim(user=alice, task_id=task.pk)
        if i:
            task_complete(user=alice, task_id=task.pk)


def run_action(page, base_url, task_ids, action_label):
    page.goto(f"{base_url}/admin/tasks/workflowtask/?queue__queue_name__exact=intake")
    for task_id in task_ids:
        page.locator(f'input.action-select[value="{task_id}"]').check()
    page.locator('select[name="action"]').select_option(label=action_label)
    page.locator('button[name="index"]').click()


def test_supervisor_reassigns_two_tasks_and_escalates_one_from_the_console(live_server_url, browser_page):
    page = browser_page
    first, second, urgent = (
        intake_task("Check the ledger"),
        intake_task("Call the witness"),
        intake_task("Press enquiry", priority=40),
    )
    backlog_done_by_alice(3)
    intake_task("Overdue statement", due_date=timezone.now() - timedelta(hours=2))
    refresh_dashboards()

    page.goto(f"{live_server_url}/accounts/login/")
    page.get_by_label("Username").fill("supervisor")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server_url}/inbox/")

    page.get_by_role("link", name="Supervisor console").click()
    expect(page.get_by_role("heading", name="Supervisor dashboard")).to_be_visible()
    expect(page.locator('#dashboard-queues tr[data-queue="intake"] td').nth(1)).to_have_text("4")
    expect(page.locator("svg.chart")).to_have_count(3)
    screenshot(page, "dashboard.png")

    run_action(page, live_server_url, [first.pk, second.pk], "Reassign selected tasks…")
    page.get_by_label("Assignee").select_option("alice")
    page.get_by_label("Comment").fill("Alice knows the case")
    page.get_by_role("button", name="Reassign").click()
    expect(page.get_by_text("Reassigned 2 tasks.")).to_be_visible()

    run_action(page, live_server_url, [urgent.pk], "Escalate selected tasks…")
    page.get_by_label("Priority").fill("90")
    page.get_by_label("Reason").fill("Journalist asking")
    page.get_by_role("button", name="Escalate").click()
    expect(page.get_by_text("Escalated 1 task.")).to_be_visible()
    screenshot(page, "console-actions.png")

    page.goto(f"{live_server_url}/admin/tasks/workflowtask/{first.pk}/change/")
    expect(page.locator(".inline-group")).to_contain_text("REASSIGNED")
    page.goto(f"{live_server_url}/admin/tasks/workflowtask/{urgent.pk}/change/")
    expect(page.locator(".inline-group")).to_contain_text("ESCALATED")
    expect(page.locator(".inline-group")).to_contain_text("Journalist asking")

    assert set(
        WorkflowTask.objects.filter(pk__in=[first.pk, second.pk]).values_list("assignee__username", flat=True)
    ) == {"alice"}
    assert TaskHistory.objects.filter(
        task=urgent, event_type=TaskEventType.ESCALATED, actor__username="supervisor"
    ).exists()
    assert page.dialogs == []
    assert not re.search(r"Server Error", page.content())


# Each word of each header cell of the element, and how many line boxes it takes (1 unless broken mid-word).
WORD_LINES_JS = """
(selector) => {
  const out = [];
  for (const th of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.textContent.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        out.push([match[0], tops.size]);
      }
    }
  }
  return out;
}
"""


def test_at_1400_pixels_no_header_breaks_mid_word_and_the_task_list_shows_every_column(live_server_url, chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        intake_task("A task to list", due_date=timezone.now() + timedelta(days=1))
        refresh_dashboards()
        page.goto(f"{live_server_url}/admin/login/?next=/admin/")
        page.get_by_label("Username").fill("supervisor")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Supervisor dashboard")).to_be_visible()
        broken = [word for word, lines in page.evaluate(WORD_LINES_JS, "#supervisor-dashboard thead th") if lines > 1]
        assert broken == []

        page.goto(f"{live_server_url}/admin/tasks/workflowtask/")
        screenshot(page, "task-changelist-1400.png")
        panel = page.locator("#changelist-filter").bounding_box()
        for column in ("column-due_date", "column-escalation_level", "column-created_at"):
            header = page.locator(f"#result_list th.{column}").bounding_box()
            assert header["x"] + header["width"] <= panel["x"], column
    finally:
        context.close()
