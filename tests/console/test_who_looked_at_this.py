"""The console's case and task pages show who looked at them (the access audit), newest first, with a page of all
reads; supervisors of the work and superusers see it, caseworkers do not; the audit cannot be edited in admin."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from cases.demo import SUPERVISOR_CONSOLE_GROUP
from entitlements import admin as entitlements_admin
from entitlements.models import AccessAuditEntry, User
from tasks.models import WorkflowTask
from tests.console.helpers import legal_supervisor
from tests.pages.conftest import deployed_demo_workflow, open_fraud_case, page_as  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def fraud_case(caseworker_alice, deployed_demo_workflow):  # noqa: F811
    return open_fraud_case(caseworker_alice)


@pytest.fixture
def intake_task(fraud_case):
    return WorkflowTask.objects.get(process_instance__case_mapping__case=fraud_case)


@pytest.fixture
def looked_at(page_as, api_as, caseworker_alice, fraud_investigator_bob, integration_account, fraud_case, intake_task):  # noqa: F811
    """alice read the case on its page, bob was refused it, the integration read it for alice; alice read the task."""
    page_as(caseworker_alice).get(f"/cases/{fraud_case.pk}/")
    page_as(fraud_investigator_bob).get(f"/cases/{fraud_case.pk}/")
    api_as(integration_account).get(f"/api/cases/{fraud_case.pk}", HTTP_X_ON_BEHALF_OF="alice")
    page_as(caseworker_alice).get(f"/tasks/{intake_task.pk}/")


def case_page(fraud_case) -> str:
    return f"/admin/cases/case/{fraud_case.pk}/change/"


def case_reads_page(fraud_case) -> str:
    return reverse("admin:cases_case_reads", args=[fraud_case.pk])


def section(body: str) -> str:
    """The "Who looked at this" part of a console page."""
    start = body.index("Who looked at this")
    return body[start : body.index("</fieldset>", start)]


def reads_table(body: str) -> str:
    start = body.index('<table class="detail-reads">')
    return body[start : body.index("</table>", start)]


def logged_in(client, user):
    client.force_login(user)
    return client


def test_supervisor_sees_who_looked_at_a_case_newest_first(client, supervisor_sam, looked_at, fraud_case):
    body = logged_in(client, supervisor_sam).get(case_page(fraud_case)).content.decode()

    rows = section(body).split("<tr>")[2:]  # after the header row
    assert len(rows) == 4
    assert "supervisor" in rows[0] and "Supervisor console" in rows[0]  # this very read, first
    assert "alice" in rows[1] and "via integration" in rows[1] and "API" in rows[1]
    assert "bob" in rows[2] and "Refused" in rows[2]
    assert "alice" in rows[3] and "own login" in rows[3] and "Caseworker page" in rows[3]
    assert case_reads_page(fraud_case) in section(body)


def test_a_case_page_shows_reads_of_the_case_not_of_its_tasks(client, supervisor_sam, looked_at, fraud_case):
    body = logged_in(client, supervisor_sam).get(case_page(fraud_case)).content.decode()

    assert "/tasks/" not in section(body)


def test_supervisor_sees_who_looked_at_a_task(client, supervisor_sam, looked_at, intake_task):
    body = logged_in(client, supervisor_sam).get(f"/admin/tasks/workflowtask/{intake_task.pk}/change/").content.decode()

    rows = section(body).split("<tr>")[2:]
    assert len(rows) == 2
    assert "supervisor" in rows[0] and "alice" in rows[1] and f"/tasks/{intake_task.pk}/" in rows[1]


def test_a_superuser_without_any_role_sees_it_too(client, looked_at, fraud_case):
    auditor = User.objects.create_superuser(username="auditor", password="pw-for-tests-1")

    body = logged_in(client, auditor).get(case_page(fraud_case)).content.decode()

    assert "bob" in section(body) and "Refused" in section(body)


def test_a_caseworker_reaches_neither_the_section_nor_the_reads_page(client, caseworker_alice, looked_at, fraud_case):
    logged_in(client, caseworker_alice)

    for url in (case_page(fraud_case), case_reads_page(fraud_case)):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_caseworker_given_the_console_sees_no_audit_of_cases_they_do_not_supervise(
    client, caseworker_alice, looked_at, fraud_case
):
    caseworker_alice.is_staff = True
    caseworker_alice.save()
    caseworker_alice.groups.add(Group.objects.get(name=SUPERVISOR_CONSOLE_GROUP))
    logged_in(client, caseworker_alice)

    assert client.get(case_page(fraud_case)).status_code == 302  # "does not exist" for them
    assert client.get(case_reads_page(fraud_case)).status_code == 404
    task = WorkflowTask.objects.get(process_instance__case_mapping__case=fraud_case)
    assert client.get(reverse("admin:tasks_workflowtask_reads", args=[task.pk])).status_code == 404


def test_a_supervisor_of_other_queues_does_not_see_the_audit(client, looked_at, fraud_case):
    logged_in(client, legal_supervisor())

    assert client.get(case_reads_page(fraud_case)).status_code == 404


def many_reads(case, count):
    start = timezone.now() - timedelta(days=1)
    AccessAuditEntry.objects.bulk_create(
        AccessAuditEntry(
            read_at=start + timedelta(seconds=n),
            object_type="case",
            object_id=case.pk,
            object_label=case.case_number,
            channel="api",
            method="GET",
            path=f"/api/cases/{case.pk}?read={n}",
        )
        for n in range(count)
    )


def test_the_case_page_shows_only_the_newest_reads(client, supervisor_sam, fraud_case):
    many_reads(fraud_case, 30)

    body = logged_in(client, supervisor_sam).get(case_page(fraud_case)).content.decode()

    shown = section(body)
    assert shown.count("<tr>") == 1 + entitlements_admin.DETAIL_READS_SHOWN
    assert "20 newest shown" in shown
    assert "read=29" in shown and "read=11" in shown and "read=10<" not in shown


def test_the_reads_page_pages_through_every_read_newest_first(client, supervisor_sam, fraud_case):
    many_reads(fraud_case, 60)
    logged_in(client, supervisor_sam)

    first = client.get(case_reads_page(fraud_case)).content.decode()
    second = client.get(case_reads_page(fraud_case) + "?page=2").content.decode()

    assert reads_table(first).count("<tr>") == 1 + entitlements_admin.DETAIL_READS_PAGE_SIZE
    assert first.index("read=59<") < first.index("read=58<")
    assert "Page 1 of 2" in first and "?page=2" in first
    assert reads_table(second).count("<tr>") == 1 + 10 and "read=0<" in second


def test_the_reads_page_lists_at_most_the_newest_cap(client, supervisor_sam, fraud_case, monkeypatch):
    monkeypatch.setattr(entitlements_admin, "DETAIL_READS_CAP", 5)
    many_reads(fraud_case, 12)

    body = logged_in(client, supervisor_sam).get(case_reads_page(fraud_case)).content.decode()

    assert reads_table(body).count("<tr>") == 1 + 5 and "Only the newest 5 are" in body and "read=11<" in body


def test_reading_the_audit_is_not_itself_a_read_of_the_case(client, supervisor_sam, fraud_case):
    logged_in(client, supervisor_sam).get(case_reads_page(fraud_case))

    assert not AccessAuditEntry.objects.filter(object_type="case", object_id=fraud_case.pk).exists()


def test_the_audit_has_no_admin_that_could_add_change_or_delete_it():
    assert AccessAuditEntry not in admin.site._registry
    for action in ("changelist", "add"):
        with pytest.raises(NoReverseMatch):
            reverse(f"admin:entitlements_accessauditentry_{action}")
