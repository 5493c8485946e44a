"""The case timeline (cases/selectors.py: case_timeline) and the scoped, read-only case admin that shows it."""

from pathlib import Path

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases import selectors
from cases.models import Case, CaseEvent, CaseWorkflowMapping
from cases.selectors import TimelineKind, case_timeline, cases_supervised_by
from cases.services import case_open
from core.errors import InvalidInput, NotFound
from entitlements.models import SecurityEvent, User
from tasks.bpmn.workflows import definition_deploy
from tasks.models import WorkflowTask
from tasks.services import task_change_priority, task_claim, task_comment_add, task_complete
from tests.console.helpers import legal_supervisor

pytestmark = pytest.mark.django_db

DEMO_BPMN = Path(__file__).resolve().parents[2] / "tasks" / "bpmn" / "onecms_case_handling.bpmn"
CASES_URL = "/admin/cases/case/"
CASE_EVENTS_URL = "/admin/cases/caseevent/"
TIMELINE_QUERY_BUDGET = 15
EXTRA_TASK_EVENTS = 30
INTAKE = {"received_on": "2026-11-02", "received_via": "EMAIL"}


def timeline_url(case) -> str:
    return f"{CASES_URL}{case.pk}/timeline/"


@pytest.fixture
def deployed(supervisor_sam):
    return definition_deploy(user=supervisor_sam, bpmn_xml=DEMO_BPMN.read_text())


@pytest.fixture
def open_case(deployed, caseworker_alice):
    def make(allegation_type="FRAUD", title="Forged invoices") -> Case:
        return case_open(
            user=caseworker_alice,
            title=title,
            allegations=[{"type": allegation_type, "description": "reported by a colleague", "date": "2026-01-05"}],
        )

    return make


def current_task(case) -> WorkflowTask:
    return WorkflowTask.objects.get(process_instance__case_mapping__case=case, status__in=["OPEN", "CLAIMED"])


def work(user, case, variables) -> None:
    task = current_task(case)
    task_claim(user=user, task_id=task.pk)
    task_complete(user=user, task_id=task.pk, variables=variables)


@pytest.fixture
def fraud_case_at_investigation(open_case, caseworker_alice, fraud_investigator_bob) -> Case:
    """Opened by alice, through intake and triage (alice), claimed in fraud-investigation by bob."""
    case = open_case()
    work(caseworker_alice, case, INTAKE)
    work(caseworker_alice, case, {"allegation_type": "FRAUD"})
    task_claim(user=fraud_investigator_bob, task_id=current_task(case).pk)
    return case


@pytest.fixture
def fraud_case_back_from_legal(fraud_case_at_investigation, fraud_investigator_bob, legal_reviewer_carol) -> Case:
    """Through fraud-investigation (bob) and legal-review (carol), now back in triage for closure."""
    case = fraud_case_at_investigation
    task_complete(
        user=fraud_investigator_bob,
        task_id=current_task(case).pk,
        variables={"recommend_action": True, "findings": "invoices forged"},
    )
    work(legal_reviewer_carol, case, {"legal_opinion": "refer"})
    return case


@pytest.fixture
def supervisor_client(client, supervisor_sam):
    client.force_login(supervisor_sam)
    return client


def kinds_of(response) -> set[str]:
    return {entry.kind for entry in (row["entry"] for row in response.context["rows"])}


# --- the selector -----------------------------------------------------------------------------------------------


def test_timeline_holds_the_opening_each_routing_hop_and_each_task_event_in_order_with_actors(
    fraud_case_at_investigation,
    supervisor_sam,
):
    case = fraud_case_at_investigation

    entries = case_timeline(user=supervisor_sam, case_id=case.pk)

    oldest_first = [(e.kind, e.summary, e.actor) for e in reversed(entries)]
    assert oldest_first == [
        ("case", "case opened: Forged invoices", "alice"),
        ("task", "created in intake", "alice"),
        ("routing", "opened in intake", "alice"),
        ("task", "claimed by alice", "alice"),
        ("task", "completed by alice", "alice"),
        ("task", "created in triage", "alice"),
        ("routing", "moved from intake to triage", "alice"),
        ("task", "claimed by alice", "alice"),
        ("task", "completed by alice", "alice"),
        ("task", "created in fraud-investigation", "alice"),
        ("routing", "moved from triage to fraud-investigation", "alice"),
        ("task", "claimed by bob", "bob"),
    ]


def test_timeline_is_newest_first_and_keeps_the_raw_values(fraud_case_at_investigation, supervisor_sam):
    entries = case_timeline(user=supervisor_sam, case_id=fraud_case_at_investigation.pk)

    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    claim = entries[0]
    assert claim.subject.startswith("Fraud investigation (#")
    assert (claim.old_values, claim.new_values) == (
        {"status": "OPEN", "assignee": None},
        {"status": "CLAIMED", "assignee": "bob"},
    )


def test_system_actions_are_attributed_to_system(fraud_case_back_from_legal, supervisor_sam, caseworker_alice):
    case = fraud_case_back_from_legal
    work(caseworker_alice, case, {"closure_reason": "REFERRED"})

    entries = case_timeline(user=supervisor_sam, case_id=case.pk, kinds=[TimelineKind.CASE_EVENT])

    assert [(e.summary, e.actor) for e in entries] == [
        ("case closed", "system"),
        ("case opened: Forged invoices", "alice"),
    ]


def test_timeline_reads_only_the_kinds_asked_for(fraud_case_at_investigation, supervisor_sam):
    entries = case_timeline(user=supervisor_sam, case_id=fraud_case_at_investigation.pk, kinds=[TimelineKind.ROUTING])

    assert [e.summary for e in reversed(entries)] == [
        "opened in intake",
        "moved from intake to triage",
        "moved from triage to fraud-investigation",
    ]


def test_a_long_timeline_keeps_only_the_span_every_kind_covers(
    fraud_case_at_investigation, supervisor_sam, monkeypatch
):
    """Task events are cut at the limit; older routing hops would then sit in a gap, so they are left out too."""
    monkeypatch.setattr(selectors, "TIMELINE_LIMIT_PER_KIND", 3)

    entries = case_timeline(user=supervisor_sam, case_id=fraud_case_at_investigation.pk)

    assert [e.summary for e in reversed(entries)] == [
        "completed by alice",
        "created in fraud-investigation",
        "moved from triage to fraud-investigation",
        "claimed by bob",
    ]


def test_timeline_refuses_an_unknown_kind(fraud_case_at_investigation, supervisor_sam):
    with pytest.raises(InvalidInput):
        case_timeline(user=supervisor_sam, case_id=fraud_case_at_investigation.pk, kinds=["gossip"])


def test_timeline_is_denied_to_a_supervisor_of_other_queues(fraud_case_at_investigation):
    lena = legal_supervisor()

    with pytest.raises(NotFound) as denied:
        case_timeline(user=lena, case_id=fraud_case_at_investigation.pk)

    assert denied.value.denial == {"case_id": fraud_case_at_investigation.pk, "capability": "supervise"}


def test_timeline_follows_the_console_rule_so_the_creating_caseworker_is_denied(
    fraud_case_at_investigation, caseworker_alice
):
    with pytest.raises(NotFound):
        case_timeline(user=caseworker_alice, case_id=fraud_case_at_investigation.pk)


def test_timeline_of_a_case_that_does_not_exist_is_not_found_without_a_denial(supervisor_sam):
    with pytest.raises(NotFound) as missing:
        case_timeline(user=supervisor_sam, case_id=987654321)

    assert missing.value.denial is None


def test_a_supervisor_still_sees_a_case_whose_work_has_left_their_queues(fraud_case_back_from_legal):
    lena = legal_supervisor()
    assert current_task(fraud_case_back_from_legal).queue_id == "triage"

    entries = case_timeline(user=lena, case_id=fraud_case_back_from_legal.pk, kinds=[TimelineKind.ROUTING])

    assert ("fraud-investigation", "legal-review") in [(e.old_values["queue"], e.new_values["queue"]) for e in entries]
    assert cases_supervised_by(user=lena).filter(pk=fraud_case_back_from_legal.pk).exists()


# --- the admin page ---------------------------------------------------------------------------------------------


def test_timeline_page_shows_the_entries_newest_first_for_the_supervisor(
    supervisor_client, fraud_case_at_investigation
):
    response = supervisor_client.get(timeline_url(fraud_case_at_investigation))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Newest first" in body
    assert (
        body.index("claimed by bob")
        < body.index("moved from triage to fraud-investigation")
        < body.index("case opened")
    )
    assert f'href="{CASES_URL}{fraud_case_at_investigation.pk}/change/"' in body  # breadcrumbs back to the case
    assert "<details>" in body


def test_timeline_page_queries_stay_bounded_as_events_grow(
    supervisor_client,
    supervisor_sam,
    caseworker_alice,
    fraud_case_at_investigation,
):
    case = fraud_case_at_investigation
    with CaptureQueriesContext(connection) as before:
        assert supervisor_client.get(timeline_url(case)).status_code == 200
    task = current_task(case)
    for number in range(EXTRA_TASK_EVENTS):
        task_comment_add(user=supervisor_sam, task_id=task.pk, comment=f"note {number}")
        task_change_priority(user=supervisor_sam, task_id=task.pk, priority=number + 1, reason="rebalancing")

    with CaptureQueriesContext(connection) as after:
        response = supervisor_client.get(timeline_url(case))

    assert len(after.captured_queries) == len(before.captured_queries) <= TIMELINE_QUERY_BUDGET
    assert len(response.context["rows"]) >= 2 * EXTRA_TASK_EVENTS


def test_timeline_page_is_within_its_query_budget(
    supervisor_client, fraud_case_back_from_legal, django_assert_max_num_queries
):
    with django_assert_max_num_queries(TIMELINE_QUERY_BUDGET):
        response = supervisor_client.get(timeline_url(fraud_case_back_from_legal))

    assert response.status_code == 200


@pytest.mark.parametrize("kind", TimelineKind.values)
def test_timeline_page_filters_by_kind_from_the_query_string(supervisor_client, fraud_case_at_investigation, kind):
    response = supervisor_client.get(timeline_url(fraud_case_at_investigation), {"kind": kind})

    assert kinds_of(response) == {kind}
    assert (
        f'href="{timeline_url(fraud_case_at_investigation)}?kind={kind}" aria-current="page"'
        in response.content.decode()
    )


def test_timeline_page_ignores_an_unknown_kind(supervisor_client, fraud_case_at_investigation):
    response = supervisor_client.get(timeline_url(fraud_case_at_investigation), {"kind": "gossip"})

    assert response.status_code == 200
    assert kinds_of(response) == set(TimelineKind.values)


def test_timeline_page_is_404_outside_a_department_supervisors_queues_and_the_denial_is_audited(
    client,
    fraud_case_at_investigation,
):
    lena = legal_supervisor()
    client.force_login(lena)

    response = client.get(timeline_url(fraud_case_at_investigation))

    assert response.status_code == 404
    denial = SecurityEvent.objects.filter(event_type=SecurityEvent.Type.PERMISSION_DENIED, actor=lena).get()
    assert denial.details["case_id"] == fraud_case_at_investigation.pk


def test_timeline_page_redirects_a_caseworker_to_the_admin_login(client, caseworker_alice, fraud_case_at_investigation):
    client.force_login(caseworker_alice)

    response = client.get(timeline_url(fraud_case_at_investigation))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_case_change_page_is_read_only_and_links_to_the_timeline(supervisor_client, fraud_case_at_investigation):
    response = supervisor_client.get(f"{CASES_URL}{fraud_case_at_investigation.pk}/change/")

    body = response.content.decode()
    assert response.status_code == 200
    assert f'href="{timeline_url(fraud_case_at_investigation)}"' in body
    assert 'name="_save"' not in body and 'name="status"' not in body


def test_case_admin_refuses_add_change_and_delete(supervisor_client, fraud_case_at_investigation):
    case = fraud_case_at_investigation

    assert supervisor_client.get(f"{CASES_URL}add/").status_code == 403
    assert supervisor_client.post(f"{CASES_URL}{case.pk}/change/", {"status": "CLOSED"}).status_code == 403
    assert supervisor_client.post(f"{CASES_URL}{case.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Case.objects.get(pk=case.pk).status == "IN_PROGRESS"


# --- the change lists -------------------------------------------------------------------------------------------


def test_changelist_links_each_case_to_its_timeline(supervisor_client, fraud_case_at_investigation):
    response = supervisor_client.get(CASES_URL)

    assert f'<a href="{timeline_url(fraud_case_at_investigation)}">Timeline</a>' in response.content.decode()


def test_changelist_of_a_department_supervisor_hides_other_departments_cases(
    client, open_case, fraud_case_back_from_legal
):
    intake_only = open_case("MISCONDUCT", title="Rude manager")
    lena = legal_supervisor()
    client.force_login(lena)

    response = client.get(CASES_URL)

    shown = [case.pk for case in response.context["cl"].result_list]
    assert fraud_case_back_from_legal.pk in shown and intake_only.pk not in shown


def test_changelist_of_the_floor_supervisor_and_a_superuser_show_every_case(client, open_case, supervisor_sam):
    cases = [open_case("FRAUD"), open_case("MISCONDUCT")]
    root = User.objects.create_superuser(username="root", password="pw-for-tests-1")

    for user in (supervisor_sam, root):
        client.force_login(user)
        shown = {case.pk for case in client.get(CASES_URL).context["cl"].result_list}
        assert {case.pk for case in cases} <= shown


def test_case_events_and_mappings_follow_their_cases_scope(client, open_case, fraud_case_back_from_legal):
    intake_only = open_case("MISCONDUCT", title="Rude manager")
    client.force_login(legal_supervisor())

    events = client.get(CASE_EVENTS_URL).context["cl"].result_list
    mappings = client.get("/admin/cases/caseworkflowmapping/").context["cl"].result_list

    assert {e.case_id for e in events} == {m.case_id for m in mappings} == {fraud_case_back_from_legal.pk}
    assert intake_only.pk not in {e.case_id for e in events}


def test_case_events_cannot_be_added_changed_or_deleted(supervisor_client, fraud_case_at_investigation):
    event = CaseEvent.objects.get(case=fraud_case_at_investigation, event_type="OPENED")
    model_admin = admin.site._registry[CaseEvent]

    add = supervisor_client.get(f"{CASE_EVENTS_URL}add/")
    change = supervisor_client.post(f"{CASE_EVENTS_URL}{event.pk}/change/", {"event_type": "FORGED"})
    delete = supervisor_client.post(f"{CASE_EVENTS_URL}{event.pk}/delete/", {"post": "yes"})

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    event.refresh_from_db()
    assert event.event_type == "OPENED"
    request = change.wsgi_request
    assert not any(
        (
            model_admin.has_add_permission(request),
            model_admin.has_change_permission(request, event),
            model_admin.has_delete_permission(request, event),
        )
    )


def test_workflow_mappings_cannot_be_changed_or_deleted(supervisor_client, fraud_case_at_investigation):
    mapping = CaseWorkflowMapping.objects.get(case=fraud_case_at_investigation)
    url = f"/admin/cases/caseworkflowmapping/{mapping.pk}/"

    assert supervisor_client.post(f"{url}change/", {"workflow_type": "other"}).status_code == 403
    assert supervisor_client.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    assert CaseWorkflowMapping.objects.get(pk=mapping.pk).workflow_type == "onecms_case_handling"
