"""The access audit: every read of a case or task detail (page, API, console) writes one row, with who, what,
through which account and where; a refused read writes one with outcome "denied"; lists write none."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from entitlements import detail_reads
from entitlements.models import AccessAuditEntry, SecurityEvent
from tasks.models import WorkflowTask
from tests.console.helpers import legal_supervisor
from tests.pages.conftest import deployed_demo_workflow, open_fraud_case, page_as  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def fraud_case(caseworker_alice, deployed_demo_workflow):  # noqa: F811
    """A case alice opened: its first task waits in intake, which alice works and bob does not see."""
    return open_fraud_case(caseworker_alice)


@pytest.fixture
def intake_task(fraud_case):
    return WorkflowTask.objects.get(process_instance__case_mapping__case=fraud_case)


@pytest.fixture
def supervisor_client(client, supervisor_sam):
    client.force_login(supervisor_sam)
    return client


def reads_of(object_type, object_id):
    return list(AccessAuditEntry.objects.filter(object_type=object_type, object_id=object_id).order_by("access_id"))


def audit_size() -> int:
    return AccessAuditEntry.objects.count()


# --- one row per read, with who, what, how --------------------------------------------------------------------------


def test_case_page_writes_one_row_naming_reader_case_and_page(page_as, caseworker_alice, fraud_case):  # noqa: F811
    response = page_as(caseworker_alice).get(f"/cases/{fraud_case.pk}/", REMOTE_ADDR="10.1.2.3")

    assert response.status_code == 200
    (read,) = reads_of("case", fraud_case.pk)
    assert (read.reader, read.via_account, read.channel, read.outcome) == (caseworker_alice, None, "page", "granted")
    assert (read.object_label, read.method, read.path) == (fraud_case.case_number, "GET", f"/cases/{fraud_case.pk}/")
    assert read.remote_addr == "10.1.2.3" and read.read_at is not None


def test_case_api_writes_one_row_on_the_api_channel(api_as, caseworker_alice, fraud_case):
    response = api_as(caseworker_alice).get(f"/api/cases/{fraud_case.pk}")

    assert response.status_code == 200
    (read,) = reads_of("case", fraud_case.pk)
    assert (read.reader, read.channel, read.outcome, read.object_label) == (
        caseworker_alice,
        "api",
        "granted",
        fraud_case.case_number,
    )
    assert read.path == f"/api/cases/{fraud_case.pk}"


def test_case_console_page_writes_one_row_on_the_admin_channel(supervisor_client, supervisor_sam, fraud_case):
    response = supervisor_client.get(f"/admin/cases/case/{fraud_case.pk}/change/")

    assert response.status_code == 200
    (read,) = reads_of("case", fraud_case.pk)
    assert (read.reader, read.channel, read.outcome, read.object_label) == (
        supervisor_sam,
        "admin",
        "granted",
        fraud_case.case_number,
    )


def test_case_timeline_in_the_console_is_a_read_of_the_case(supervisor_client, supervisor_sam, fraud_case):
    response = supervisor_client.get(f"/admin/cases/case/{fraud_case.pk}/timeline/")

    assert response.status_code == 200
    (read,) = reads_of("case", fraud_case.pk)
    assert (read.reader, read.channel, read.path) == (
        supervisor_sam,
        "admin",
        f"/admin/cases/case/{fraud_case.pk}/timeline/",
    )


@pytest.mark.parametrize(
    "channel,url",
    [
        ("page", "/tasks/{id}/"),
        ("api", "/api/workflow/tasks/{id}"),
        ("api", "/api/workflow/tasks/{id}/history"),
    ],
)
def test_task_reads_write_one_row_labelled_with_the_case_number(
    page_as,  # noqa: F811
    api_as,
    caseworker_alice,
    fraud_case,
    intake_task,
    channel,
    url,
):
    client = page_as(caseworker_alice) if channel == "page" else api_as(caseworker_alice)

    response = client.get(url.format(id=intake_task.pk))

    assert response.status_code == 200
    (read,) = reads_of("task", intake_task.pk)
    assert (read.reader, read.channel, read.outcome) == (caseworker_alice, channel, "granted")
    assert read.object_label == fraud_case.case_number  # the business key of the task's process
    assert read.path == url.format(id=intake_task.pk)
    assert reads_of("case", fraud_case.pk) == []  # the task page shows its case's summary, not its detail


def test_task_console_page_writes_one_row(supervisor_client, supervisor_sam, fraud_case, intake_task):
    response = supervisor_client.get(f"/admin/tasks/workflowtask/{intake_task.pk}/change/")

    assert response.status_code == 200
    (read,) = reads_of("task", intake_task.pk)
    assert (read.reader, read.channel, read.object_label) == (supervisor_sam, "admin", fraud_case.case_number)


def test_a_task_outside_any_process_is_read_without_a_label(page_as, caseworker_alice, make_task):  # noqa: F811
    task = make_task("intake", name="Loose review")

    page_as(caseworker_alice).get(f"/tasks/{task.pk}/")

    (read,) = reads_of("task", task.pk)
    assert read.object_label == ""


def test_an_archived_task_read_is_recorded_too(api_as, caseworker_alice, archived_task):
    response = api_as(caseworker_alice).get(f"/api/workflow/tasks/{archived_task.pk}")

    assert response.status_code == 200
    assert [r.outcome for r in reads_of("task", archived_task.pk)] == ["granted"]


def test_each_read_is_its_own_row(page_as, caseworker_alice, fraud_case):  # noqa: F811
    client = page_as(caseworker_alice)
    for _ in range(3):
        client.get(f"/cases/{fraud_case.pk}/")

    assert len(reads_of("case", fraud_case.pk)) == 3


# --- act-as: both identities ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,url", [("case", "/api/cases/{case}"), ("task", "/api/workflow/tasks/{task}")])
def test_a_read_through_act_as_names_the_user_and_the_integration(
    api_as, integration_account, caseworker_alice, fraud_case, intake_task, kind, url
):
    response = api_as(integration_account).get(
        url.format(case=fraud_case.pk, task=intake_task.pk), HTTP_X_ON_BEHALF_OF="alice"
    )

    assert response.status_code == 200, response.content
    (read,) = reads_of(kind, fraud_case.pk if kind == "case" else intake_task.pk)
    assert (read.reader, read.via_account) == (caseworker_alice, integration_account)


def test_an_integration_reading_for_itself_has_no_via_account(api_as, integration_account, make_task):
    from entitlements.models import WorkflowRole
    from entitlements.services import role_assignment_grant

    role_assignment_grant(user=integration_account, role=WorkflowRole.objects.get(role_code="intake-caseworker"))
    task = make_task("intake")

    api_as(integration_account).get(f"/api/workflow/tasks/{task.pk}")

    (read,) = reads_of("task", task.pk)
    assert (read.reader, read.via_account) == (integration_account, None)


# --- refused reads --------------------------------------------------------------------------------------------------


def test_a_case_page_outside_my_queues_is_404_and_recorded_as_denied(
    page_as,  # noqa: F811
    fraud_investigator_bob,
    fraud_case,
):
    response = page_as(fraud_investigator_bob).get(f"/cases/{fraud_case.pk}/")

    assert response.status_code == 404
    (read,) = reads_of("case", fraud_case.pk)
    assert (read.reader, read.channel, read.outcome, read.object_label) == (
        fraud_investigator_bob,
        "page",
        "denied",
        "",
    )
    # The security audit keeps its PERMISSION_DENIED event as before.
    assert SecurityEvent.objects.filter(
        event_type="PERMISSION_DENIED", actor=fraud_investigator_bob, path=f"/cases/{fraud_case.pk}/"
    ).exists()


@pytest.mark.parametrize(
    "kind,url",
    [
        ("task", "/api/workflow/tasks/{task}"),
        ("task", "/api/workflow/tasks/{task}/history"),
        ("case", "/api/cases/{case}"),
    ],
)
def test_an_api_read_outside_my_queues_is_404_and_recorded_as_denied(
    api_as, fraud_investigator_bob, fraud_case, intake_task, kind, url
):
    response = api_as(fraud_investigator_bob).get(url.format(case=fraud_case.pk, task=intake_task.pk))

    assert response.status_code == 404
    (read,) = reads_of(kind, fraud_case.pk if kind == "case" else intake_task.pk)
    assert (read.reader, read.channel, read.outcome) == (fraud_investigator_bob, "api", "denied")


def test_a_task_page_outside_my_queues_is_recorded_as_denied(page_as, fraud_investigator_bob, intake_task):  # noqa: F811
    assert page_as(fraud_investigator_bob).get(f"/tasks/{intake_task.pk}/").status_code == 404

    assert [(r.reader, r.outcome) for r in reads_of("task", intake_task.pk)] == [(fraud_investigator_bob, "denied")]


def test_a_refused_read_through_act_as_names_both_identities(api_as, integration_account, fraud_case):
    response = api_as(integration_account).get(f"/api/cases/{fraud_case.pk}", HTTP_X_ON_BEHALF_OF="bob")

    assert response.status_code == 404
    (read,) = reads_of("case", fraud_case.pk)
    assert (read.reader.username, read.via_account, read.outcome) == ("bob", integration_account, "denied")


def test_a_console_page_outside_my_scope_is_recorded_as_denied(client, fraud_case):
    lena = legal_supervisor()  # supervises Legal only; the case's work has never been there
    client.force_login(lena)

    response = client.get(f"/admin/cases/case/{fraud_case.pk}/change/")

    assert response.status_code == 302  # the admin's "does not exist" redirect
    assert [(r.reader, r.channel, r.outcome) for r in reads_of("case", fraud_case.pk)] == [(lena, "admin", "denied")]


@pytest.mark.parametrize("url", ["/cases/987654321/", "/api/cases/987654321", "/api/workflow/tasks/987654321"])
def test_an_object_that_does_not_exist_writes_nothing(page_as, api_as, caseworker_alice, url):  # noqa: F811
    client = api_as(caseworker_alice) if url.startswith("/api/") else page_as(caseworker_alice)
    before = audit_size()

    assert client.get(url).status_code == 404

    assert audit_size() == before


def test_an_action_on_a_task_is_not_a_detail_read(api_as, caseworker_alice, intake_task):
    assert api_as(caseworker_alice).post(f"/api/workflow/tasks/{intake_task.pk}/claim").status_code == 200

    assert reads_of("task", intake_task.pk) == []


# --- lists write none -----------------------------------------------------------------------------------------------


def access_audit_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if "access_audit" in q["sql"]]


@pytest.mark.parametrize(
    "who,url",
    [
        ("alice", "/inbox/"),
        ("alice", "/inbox/queues/"),
        ("alice", "/api/workflow/tasks/"),
        ("alice", "/api/cases/"),
        ("supervisor", "/admin/tasks/workflowtask/"),
        ("supervisor", "/admin/cases/case/"),
    ],
)
def test_lists_write_no_row_and_touch_no_audit(
    page_as,  # noqa: F811
    api_as,
    caseworker_alice,
    supervisor_sam,
    fraud_case,
    intake_task,
    make_task,
    who,
    url,
):
    from tasks.services import task_claim

    task_claim(user=caseworker_alice, task_id=intake_task.pk)  # the inbox lists it
    make_task("intake", name="Waiting review")  # the queues page lists it
    user = caseworker_alice if who == "alice" else supervisor_sam
    client = api_as(user) if url.startswith("/api/") else page_as(user)
    before = audit_size()

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)

    assert response.status_code == 200
    body = response.content.decode()
    assert any(shown in body for shown in (fraud_case.case_number, "Intake review", "Waiting review"))
    assert access_audit_queries(captured.captured_queries) == []
    assert audit_size() == before


# --- cost: one INSERT, nothing else ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who,url",
    [
        ("alice", "/cases/{case}/"),
        ("alice", "/tasks/{task}/"),
        ("alice", "/api/cases/{case}"),
        ("alice", "/api/workflow/tasks/{task}"),
        ("alice", "/api/workflow/tasks/{task}/history"),
        ("supervisor", "/admin/cases/case/{case}/change/"),
        ("supervisor", "/admin/tasks/workflowtask/{task}/change/"),
    ],
)
def test_a_detail_read_costs_exactly_one_query_more_an_insert(
    page_as,  # noqa: F811
    api_as,
    caseworker_alice,
    supervisor_sam,
    fraud_case,
    intake_task,
    monkeypatch,
    django_assert_num_queries,
    who,
    url,
    request,
):
    user = caseworker_alice if who == "alice" else supervisor_sam
    client = api_as(user) if url.startswith("/api/") else page_as(user)
    url = url.format(case=fraud_case.pk, task=intake_task.pk)
    client.get(url)  # first request of the session: token last-use, caches
    with monkeypatch.context() as unrecorded:
        unrecorded.setattr(detail_reads, "access_audit_record", lambda **row: None)
        with CaptureQueriesContext(connection) as without_audit:
            client.get(url)

    with django_assert_num_queries(len(without_audit.captured_queries) + 1) as with_audit:
        response = client.get(url)

    assert response.status_code == 200
    audit = access_audit_queries(with_audit.captured_queries)
    inserts = [sql for sql in audit if sql.startswith('INSERT INTO "entitlements"."access_audit"')]
    assert len(inserts) == 1
    # Besides it, only the console reads the audit: its "who looked at this" section.
    expected_selects = 1 if who == "supervisor" else 0
    assert len(audit) - 1 == expected_selects and all(sql.startswith("SELECT") for sql in audit if sql not in inserts)
