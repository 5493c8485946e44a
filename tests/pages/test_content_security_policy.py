"""Every page, the admin and the API docs work under the Content-Security-Policy: no violation in a real browser."""

import pytest

from cases.models import CaseWorkflowMapping
from entitlements.models import User
from tasks.models import WorkflowTask
from tasks.sla.maintenance import refresh_dashboards

from .conftest import DEMO_PASSWORD, open_fraud_case
from .test_browser import deploy_demo_workflow

pytestmark = pytest.mark.browser

# Recorded in the page itself: Chromium reports each blocked script, style or frame as this event.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`);
});
"""


def test_the_policy_header_allows_only_this_site(client, caseworker_alice):
    client.force_login(caseworker_alice)

    policy = client.get("/inbox/")["Content-Security-Policy"]

    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy


def test_pages_admin_and_api_docs_raise_no_policy_violation(live_server_url, browser_page):
    page = browser_page
    supervisor = User.objects.get(username="supervisor")
    deploy_demo_workflow(supervisor)
    case = open_fraud_case(User.objects.get(username="alice"))
    task = WorkflowTask.objects.filter(process_instance__business_key=case.case_number).get()
    instance_id = CaseWorkflowMapping.objects.get(case=case).process_instance_id
    refresh_dashboards()
    console_errors = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.add_init_script(RECORD_VIOLATIONS)

    page.goto(f"{live_server_url}/accounts/login/")
    page.get_by_label("Username").fill("supervisor")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server_url}/inbox/")

    visited = {}
    for path in [
        "/inbox/",
        "/inbox/queues/",
        f"/tasks/{task.pk}/",
        f"/cases/{case.pk}/",
        "/admin/",
        "/admin/tasks/workflowtask/",
        f"/admin/tasks/workflowtask/{task.pk}/change/",
        f"/admin/cases/case/{case.pk}/timeline/",
        f"/admin/tasks/processinstance/{instance_id}/diagram/",
        "/admin/entitlements/user/",
        "/api/docs/",
    ]:
        response = page.goto(f"{live_server_url}{path}")
        if path == "/api/docs/":
            page.wait_for_selector(".swagger-ui .info", timeout=15_000)  # the UI ran and read the schema
        page.wait_for_load_state("networkidle")
        visited[path] = (response.status, page.evaluate("window.__cspViolations"))

    assert {path: status for path, (status, _) in visited.items() if status != 200} == {}
    assert {path: found for path, (_, found) in visited.items() if found} == {}
    assert [text for text in console_errors if "Content Security Policy" in text] == []
