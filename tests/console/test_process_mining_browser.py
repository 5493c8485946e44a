"""A supervisor opens the process mining overlay of the demo workflow in a real browser against a live server."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cases.demo import DEMO_WORKER_BY_QUEUE, task_variables
from entitlements.models import User
from entitlements.row_scope import system_scope
from tasks.bpmn.workflows import definition_deploy, process_start
from tasks.models import ProcessInstance, WorkflowTask
from tasks.services import task_claim, task_complete
from tasks.sla.maintenance import refresh_dashboards
from tests.conftest import DEMO_PASSWORD
from tests.pages.conftest import DEMO_BPMN, screenshot

pytestmark = pytest.mark.browser

# Allegations of the demo cases run through the engine: fraud goes to investigation and legal review, misconduct to
# review and (when action is recommended) legal review, conflicts of interest to review and straight to closure.
ALLEGATIONS = ["FRAUD", "MISCONDUCT", "FRAUD", "CONFLICT_OF_INTEREST", "FRAUD", "MISCONDUCT", "FRAUD", "FRAUD"]
# Hours waiting before and working on each activity, so the figures look like a month of work.
WAIT_HOURS = {
    "intake_review": 2,
    "triage": 6,
    "fraud_investigation": 20,
    "misconduct_review": 10,
    "legal_review": 40,
    "closure": 3,
}
WORK_HOURS = {
    "intake_review": 0.5,
    "triage": 1,
    "fraud_investigation": 8,
    "misconduct_review": 5,
    "legal_review": 4,
    "closure": 0.3,
}


def demo_history() -> None:
    """Cases through the demo workflow with the real engine, their task times then spread over the last weeks."""
    supervisor = User.objects.get(username="supervisor")
    people = {u.username: u for u in User.objects.filter(username__in=set(DEMO_WORKER_BY_QUEUE.values()))}
    definition = definition_deploy(user=supervisor, bpmn_xml=DEMO_BPMN.read_text())
    now = timezone.now()
    for index, allegation in enumerate(ALLEGATIONS):
        instance = process_start(
            user=supervisor, process_key=definition.process_key, business_key=f"CASE-2026-MINE-{index:02d}"
        )
        finish = index != len(ALLEGATIONS) - 1  # the last one stays open in its investigation
        steps = 0
        while True:
            task = WorkflowTask.objects.filter(process_instance=instance, status="OPEN").order_by("task_id").first()
            if task is None or (not finish and steps == 3):
                break
            worker = people[DEMO_WORKER_BY_QUEUE[task.queue_id]]
            task_claim(user=worker, task_id=task.pk)
            task_complete(
                user=worker, task_id=task.pk, variables=task_variables(allegation, 0, task.task_definition_key)
            )
            steps += 1
        spread(instance, start=now - timedelta(days=20 - 2 * index), stretch=1 + (index % 3) * 0.4)
    refresh_dashboards()


def spread(instance, *, start, stretch: float) -> None:
    moment = start
    with system_scope():
        instance.refresh_from_db()
        for task in WorkflowTask.objects.filter(process_instance=instance).order_by("task_id"):
            key = task.task_definition_key
            claimed = moment + timedelta(hours=WAIT_HOURS[key] * stretch)
            completed = claimed + timedelta(hours=WORK_HOURS[key] * stretch)
            done = task.completed_at is not None
            WorkflowTask.objects.filter(pk=task.pk).update(
                created_at=moment,
                claimed_at=claimed if task.claimed_at else None,
                completed_at=completed if done else None,
            )
            moment = completed
        if instance.ended_at is not None:
            ProcessInstance.objects.filter(pk=instance.pk).update(started_at=start, ended_at=moment)
        else:
            ProcessInstance.objects.filter(pk=instance.pk).update(started_at=start)


def test_a_supervisor_sees_the_mining_overlay_of_the_demo_workflow(live_server_url, browser_page):
    demo_history()
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server_url}/accounts/login/")
    page.get_by_label("Username").fill("supervisor")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server_url}/inbox/")
    page.get_by_role("link", name="Supervisor console").click()

    page.get_by_role("link", name="Process mining").click()
    page.get_by_role("link", name="OneCMS case handling").first.click()
    page.get_by_role("link", name="Colour by duration").click()

    diagram = page.locator("#mining-diagram")
    expect(diagram.locator('g[data-element-id="legal_review"][data-bottleneck="true"]')).to_have_count(1)
    expect(diagram.locator('g[data-element-id="flow_to_intake"]')).to_have_attribute("data-taken", "8")
    expect(diagram.locator('g[data-element-id="flow_fraud"]')).to_have_attribute("data-taken", "5")
    expect(page.locator("#mining-variants tbody tr").first).to_contain_text("Fraud investigation")
    expect(page.locator("#mining-activities tr.bottleneck")).to_contain_text("Legal review")
    box = diagram.locator("svg").bounding_box()
    assert box["width"] > 0 and box["height"] > 0
    screenshot(page, "mining-overlay.png")
    assert page.dialogs == []
