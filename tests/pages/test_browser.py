"""The caseworker pages in a real browser (Debian's chromium through Playwright) against a live server.

Data is committed (committed_db) because the server answers from its own threads and connections.
"""

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from entitlements.models import User
from queues.models import WorkflowQueue
from tasks.models import WorkflowTask

from .conftest import DEMO_BPMN, DEMO_PASSWORD, open_fraud_case, screenshot

pytestmark = pytest.mark.browser


def people():
    return {u.username: u for u in User.objects.filter(username__in=["alice", "bob", "carol", "supervisor"])}


def deploy_demo_workflow(supervisor):
    from tasks.bpmn.workflows import definition_deploy

    definition_deploy(user=supervisor, bpmn_xml=DEMO_BPMN.read_text())


def standalone_task(queue_name, name, **fields):
    from tasks.services import task_insert

    with transaction.atomic():
        return task_insert(queue=WorkflowQueue.objects.get(queue_name=queue_name), name=name, **fields)


def log_in(page, base_url, username):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/inbox/")


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_alice_completes_intake_and_triage_and_bob_finds_the_investigation_in_his_queue(live_server_url, browser_page):
    page, users = browser_page, people()
    deploy_demo_workflow(users["supervisor"])
    case = open_fraud_case(users["alice"])
    open_fraud_case(users["alice"], title="Duplicate expense claims, finance team")

    page.goto(f"{live_server_url}/inbox/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/inbox/"))
    screenshot(page, "login.png")
    log_in(page, live_server_url, "alice")

    # Claim next: the oldest task of the highest priority, the first case's intake review.
    page.get_by_role("button", name="Claim next task").click()
    expect(page.get_by_role("heading", name="Intake review")).to_be_visible()
    expect(page.get_by_text("You claimed “Intake review”.")).to_be_visible()
    expect(page.locator(".case-link")).to_have_text(case.case_number)

    # Completing without the required fields keeps what was typed and says what is missing beside each field.
    page.get_by_label("Intake notes").fill("Complainant asked to stay anonymous.")
    page.get_by_label("Anonymous complainant").check()
    page.get_by_role("button", name="Complete task").click()
    expect(page.locator("#field-received_on-error")).to_have_text("This field is required.")
    expect(page.locator("#field-received_via-error")).to_have_text("This field is required.")
    expect(page.get_by_label("Intake notes")).to_have_value("Complainant asked to stay anonymous.")
    expect(page.get_by_label("Anonymous complainant")).to_be_checked()
    screenshot(page, "task.png")

    page.get_by_label("Complaint received on").fill("2026-01-16")
    page.get_by_label("Received via").select_option("EMAIL")
    page.get_by_role("button", name="Complete task").click()
    expect(page.get_by_text("Done: “Intake review” is complete.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/inbox/"))

    # One click to the next task: triage of the same case (priority 60).
    page.get_by_role("button", name="Claim next task").click()
    expect(page.get_by_role("heading", name="Triage")).to_be_visible()
    expect(page.locator(".case-link")).to_have_text(case.case_number)
    page.get_by_label("Allegation type").select_option("FRAUD")
    page.get_by_role("button", name="Complete task").click()
    expect(page.get_by_text("Done: “Triage” is complete.")).to_be_visible()

    # Alice's inbox with some claimed work, one of it overdue.
    overdue = standalone_task("triage", "Call back the whistleblower", priority=70)
    from tasks.services import task_claim

    for task in (overdue, standalone_task("intake", "Check the scanned letter", priority=40)):
        task_claim(user=users["alice"], task_id=task.pk)
    WorkflowTask.objects.filter(pk=overdue.pk).update(due_date=timezone.now() - timedelta(hours=6))
    page.get_by_role("button", name="Claim next task").click()
    expect(page.get_by_role("heading", name="Intake review")).to_be_visible()
    page.get_by_role("link", name="My tasks").first.click()
    expect(page.get_by_role("heading", name="Claimed by me")).to_be_visible()
    expect(page.locator(".task-item").first).to_contain_text("Overdue by")
    screenshot(page, "inbox.png")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "inbox-phone.png")
    page.set_viewport_size({"width": 1280, "height": 860})
    log_out(page)

    # Bob sees the fraud investigation the workflow put in his queue, and claims it.
    standalone_task("fraud-investigation", "Trace supplier bank accounts", priority=45, required_skills=["fraud"])
    log_in(page, live_server_url, "bob")
    page.get_by_role("link", name="My queues").click()
    row = page.locator("tr", has_text="Fraud investigation")
    expect(row).to_contain_text(case.case_number)
    expect(page.get_by_text("Intake review")).to_have_count(0)
    screenshot(page, "queues.png")
    row.get_by_role("button", name=re.compile("^Claim task")).click()
    expect(page.get_by_role("heading", name="Fraud investigation")).to_be_visible()
    expect(page.get_by_text("Claimed by bob (you)")).to_be_visible()

    page.locator(".case-link").click()
    expect(page.get_by_role("heading", name=re.compile(case.case_number))).to_be_visible()
    expect(page.get_by_text("triage → fraud-investigation")).to_be_visible()
    screenshot(page, "case.png")
    assert page.dialogs == []


def test_the_pages_work_without_javascript(live_server_url, chromium):
    users = people()
    standalone_task(
        "intake",
        "Intake without scripts",
        form_fields=[
            {"id": "received_on", "label": "Complaint received on", "type": "date", "required": True},
        ],
    )
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_server_url, users["alice"].username)
        page.get_by_role("button", name="Claim next task").click()
        expect(page.get_by_role("heading", name="Intake without scripts")).to_be_visible()
        page.get_by_role("button", name="Complete task").click()
        expect(page.locator("#field-received_on-error")).to_have_text("This field is required.")
        page.get_by_label("Complaint received on").fill("2026-01-16")
        page.get_by_role("button", name="Complete task").click()
        expect(page.get_by_text("“Intake without scripts” is complete")).to_be_visible()
    finally:
        context.close()


def test_a_case_title_with_a_script_tag_renders_as_text(live_server_url, browser_page):
    page, users = browser_page, people()
    deploy_demo_workflow(users["supervisor"])
    case = open_fraud_case(users["alice"], title="<script>alert(1)</script>")
    task = WorkflowTask.objects.get(process_instance__case_mapping__case=case)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/cases/{case.pk}/")
    expect(page.locator("h1 .case-title")).to_have_text("<script>alert(1)</script>")
    page.goto(f"{live_server_url}/tasks/{task.pk}/")
    expect(page.locator("aside .case-title")).to_have_text("<script>alert(1)</script>")
    assert page.dialogs == []


def test_a_task_of_another_queue_is_404(live_server_url, browser_page):
    page = browser_page
    task = standalone_task("fraud-investigation", "Not for alice")
    log_in(page, live_server_url, "alice")
    response = page.goto(f"{live_server_url}/tasks/{task.pk}/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_text("Not for alice")).to_have_count(0)
