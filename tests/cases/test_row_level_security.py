"""Row-level security on cases, case events and mappings, and on the tasks and instances of a case one reaches
(cases/sql/, docs/row-level-security.md): the rules of cases/selectors.py, held by PostgreSQL.

Each test runs as a role row-level security applies to (row_security_enforced). Alice views intake and triage;
carol views legal-review; bob views fraud-investigation.
"""

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from cases.models import Case, CaseEvent, CaseSubject, CaseWorkflowMapping
from entitlements.row_scope import NO_ROWS, acting_as, row_scope
from queues.models import WorkflowQueue
from tasks.models import ProcessInstance, WorkflowDefinition, WorkflowTask

pytestmark = pytest.mark.usefixtures("row_security_enforced")


@pytest.fixture
def open_case(make_task):
    """A case with its workflow (an instance, a mapping whose hops are given, tasks in the given queues) and an
    OPENED event, made as the engine and cases/services.py would."""
    definition = WorkflowDefinition.objects.create(process_key="rls-cases", version=1, bpmn_xml="<definitions/>")
    made = []

    def make(*, title, task_queues=(), hops=(), created_by=None, assigned_to=None):
        case = Case.objects.create(
            case_number=f"RLS-{len(made) + 1:04d}", title=title, created_by=created_by, assigned_to=assigned_to
        )
        CaseEvent.objects.create(case=case, event_type="OPENED", actor=created_by, new_values={"title": title})
        instance = ProcessInstance.objects.create(definition=definition, business_key=case.case_number)
        history = [{"from_queue": None, "to_queue": queue, "at": timezone.now().isoformat()} for queue in hops]
        CaseWorkflowMapping.objects.create(
            case=case, process_instance=instance, workflow_type="rls-cases", routing_history=history
        )
        for queue in task_queues:
            make_task(queue, name=f"{title}: {queue}", process_instance=instance)
        made.append(case)
        return case

    return make


def titles(queryset=None) -> set[str]:
    return set((queryset if queryset is not None else Case.objects.all()).values_list("title", flat=True))


def test_a_user_reaches_the_cases_they_opened_are_assigned_or_whose_tasks_are_in_their_queues(
    open_case, caseworker_alice, fraud_investigator_bob
):
    open_case(title="opened by alice", task_queues=["fraud-investigation"], created_by=caseworker_alice)
    open_case(title="assigned to alice", task_queues=["legal-review"], assigned_to=caseworker_alice)
    open_case(title="in intake", task_queues=["intake"], created_by=fraud_investigator_bob)
    open_case(title="elsewhere", task_queues=["legal-review"], hops=["intake"], created_by=fraud_investigator_bob)

    with acting_as(caseworker_alice):
        reached = titles()

    assert {"opened by alice", "assigned to alice", "in intake"} <= reached
    assert "elsewhere" not in reached  # a hop through a queue alice views but does not supervise


def test_a_supervisor_reaches_the_cases_whose_work_passed_through_a_queue_they_supervise(
    open_case, legal_reviewer_carol, fraud_investigator_bob
):
    case = open_case(title="passed legal", task_queues=["fraud-investigation"], hops=["legal-review"])
    with acting_as(legal_reviewer_carol):
        assert "passed legal" not in titles()  # carol views legal-review; she does not supervise it

    assign_perm("supervise_workflowqueue", legal_reviewer_carol, WorkflowQueue.objects.get(queue_name="legal-review"))

    with acting_as(legal_reviewer_carol):
        assert "passed legal" in titles()
        assert set(CaseEvent.objects.values_list("case_id", flat=True)) >= {case.pk}
        # the case's work, wherever it is now, is read with the case (the console's timeline)
        assert WorkflowTask.objects.filter(queue_id="fraud-investigation", name__startswith="passed legal").exists()


def test_events_mappings_subjects_instances_and_tasks_follow_their_case(
    open_case, caseworker_alice, legal_reviewer_carol
):
    mine = open_case(title="mine", task_queues=["legal-review"], created_by=caseworker_alice)
    other = open_case(title="other", task_queues=["legal-review"], created_by=legal_reviewer_carol)
    for case in (mine, other):
        CaseSubject.objects.create(case=case, role="SUBJECT", full_name=f"Person of {case.title}")

    with acting_as(caseworker_alice):
        assert set(CaseEvent.objects.values_list("case_id", flat=True)) == {mine.pk}
        assert set(CaseWorkflowMapping.objects.values_list("case_id", flat=True)) == {mine.pk}
        assert set(CaseSubject.objects.values_list("case_id", flat=True)) == {mine.pk}
        instances = set(ProcessInstance.objects.values_list("business_key", flat=True))
        tasks = titles_of_tasks()

    assert mine.case_number in instances and other.case_number not in instances
    assert "mine: legal-review" in tasks and "other: legal-review" not in tasks


def titles_of_tasks() -> set[str]:
    return set(WorkflowTask.objects.values_list("name", flat=True))


def test_no_row_scope_reaches_no_case_event_or_mapping(open_case, caseworker_alice):
    open_case(title="any", task_queues=["intake"], created_by=caseworker_alice)

    with row_scope(NO_ROWS):
        assert (Case.objects.count(), CaseEvent.objects.count(), CaseWorkflowMapping.objects.count()) == (0, 0, 0)
        assert CaseSubject.objects.count() == 0


def test_the_case_list_without_its_access_filter_still_shows_only_the_users_cases(
    monkeypatch, api_as, open_case, caseworker_alice, legal_reviewer_carol
):
    from cases import selectors

    open_case(title="alice's", task_queues=["intake"], created_by=legal_reviewer_carol)
    open_case(title="carol's", task_queues=["legal-review"], created_by=legal_reviewer_carol)
    monkeypatch.setattr(
        selectors,
        "case_list",
        lambda *, user, condition=None: selectors.CaseList(cases=Case.objects.all(), estimate=None),
    )

    response = api_as(caseworker_alice).get("/api/cases/")

    assert response.status_code == 200, response.content
    listed = {row["title"] for row in response.json()["results"]}
    assert "alice's" in listed
    assert "carol's" not in listed


def test_the_case_page_lists_the_cases_tasks_in_queues_the_reader_cannot_open(client, open_case, caseworker_alice):
    case = open_case(title="alice opened", task_queues=["legal-review"], created_by=caseworker_alice)
    client.force_login(caseworker_alice)

    page = client.get(f"/cases/{case.pk}/").content.decode()

    assert "alice opened: legal-review" in page
