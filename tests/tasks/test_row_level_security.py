"""Row-level security on tasks, their history, process instances and the archive: what each row scope reaches
(entitlements/row_scope.py, the policies of tasks/sql/, docs/row-level-security.md), and that it holds when the
Python access check is gone.

Each test runs as a role row-level security applies to (row_security_enforced). Alice views intake and triage;
legal-review is carol's.
"""

import pytest
from django.db import DatabaseError, connection, transaction

from entitlements.row_scope import NO_ROWS, SYSTEM, RowScope, acting_as, row_scope, user_row_scope
from tasks.models import ArchivedTask, ProcessInstance, TaskHistory, WorkflowTask

pytestmark = pytest.mark.usefixtures("row_security_enforced")


@pytest.fixture
def intake_and_legal(make_task):
    """One task in alice's intake queue and one in carol's legal-review queue, each with its CREATED event."""
    return make_task("intake", name="intake work"), make_task("legal-review", name="legal work")


def task_names(queryset=None) -> set[str]:
    return set((queryset if queryset is not None else WorkflowTask.objects.all()).values_list("name", flat=True))


def test_a_query_in_no_row_scope_finds_no_task_history_or_instance(intake_and_legal):
    with row_scope(NO_ROWS):
        assert WorkflowTask.objects.count() == 0
        assert TaskHistory.objects.count() == 0
        assert ProcessInstance.objects.count() == 0


def test_the_system_scope_finds_every_task_and_event(intake_and_legal):
    with row_scope(SYSTEM):
        assert {"intake work", "legal work"} <= task_names()
        assert TaskHistory.objects.filter(task__in=intake_and_legal).count() == 2


def test_a_user_finds_the_tasks_of_the_queues_they_may_view_and_no_other(caseworker_alice, intake_and_legal):
    with acting_as(caseworker_alice):
        names = task_names()
        queues = set(WorkflowTask.objects.values_list("queue_id", flat=True))

    assert "intake work" in names
    assert "legal work" not in names
    assert queues <= {"intake", "triage"}


def test_history_is_read_with_its_task(caseworker_alice, intake_and_legal):
    intake, legal = intake_and_legal

    with acting_as(caseworker_alice):
        events = set(TaskHistory.objects.filter(task__in=[intake.pk, legal.pk]).values_list("task_id", flat=True))

    assert events == {intake.pk}


def test_the_task_list_without_its_access_filter_still_shows_only_the_callers_queues(
    monkeypatch, api_as, caseworker_alice, intake_and_legal
):
    from tasks import selectors

    monkeypatch.setattr(selectors, "tasks_listed_for", lambda *, user, queue_names=None: WorkflowTask.objects.all())
    monkeypatch.setattr(selectors, "task_list_queue_names", lambda *, user: ["intake", "triage", "legal-review"])
    with row_scope(SYSTEM):
        assert "legal work" in task_names(selectors.tasks_listed_for(user=caseworker_alice))  # the filter is gone

    response = api_as(caseworker_alice).get("/api/workflow/tasks/", {"page_size": 200})

    assert response.status_code == 200, response.content
    listed = {(row["name"], row["queue"]) for row in response.json()["results"]}
    assert ("intake work", "intake") in listed
    assert {queue for _, queue in listed} <= {"intake", "triage"}


def test_the_queue_page_without_its_access_filter_still_shows_only_the_users_queues(
    monkeypatch, client, caseworker_alice, intake_and_legal
):
    from tasks import selectors

    monkeypatch.setattr(selectors, "tasks_listed_for", lambda *, user, queue_names=None: WorkflowTask.objects.all())
    monkeypatch.setattr(selectors, "task_list_queue_names", lambda *, user: ["intake", "triage", "legal-review"])
    client.force_login(caseworker_alice)

    page = client.get("/inbox/queues/").content.decode()

    assert "intake work" in page
    assert "legal work" not in page


def test_a_task_outside_the_users_queues_is_not_found_even_without_the_access_check(
    monkeypatch, caseworker_alice, intake_and_legal
):
    from tasks import selectors

    _, legal = intake_and_legal
    monkeypatch.setattr(selectors, "tasks_visible_to", lambda *, user, capability=None: WorkflowTask.objects.all())

    with acting_as(caseworker_alice):
        assert not WorkflowTask.objects.filter(pk=legal.pk).exists()
        assert WorkflowTask.objects.filter(pk=legal.pk).update(priority=99) == 0


def test_a_user_cannot_move_a_task_of_their_queue_into_one_they_cannot_see(caseworker_alice, intake_and_legal):
    intake, _ = intake_and_legal

    with acting_as(caseworker_alice), pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        WorkflowTask.objects.filter(pk=intake.pk).update(queue_id="legal-review")

    with row_scope(SYSTEM):
        assert WorkflowTask.objects.get(pk=intake.pk).queue_id == "intake"


def test_a_user_cannot_append_history_to_a_task_outside_their_queues(caseworker_alice, intake_and_legal):
    _, legal = intake_and_legal

    with acting_as(caseworker_alice), pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        TaskHistory.objects.create(task_id=legal.pk, event_type="COMMENTED", comment="not mine")


def test_a_superuser_reads_every_task_but_writes_only_in_their_queues(intake_and_legal):
    from tests.factories import UserFactory

    root = UserFactory(username="root-reader", is_superuser=True, is_staff=True)
    _, legal = intake_and_legal

    with acting_as(root):
        assert user_row_scope(root).kind == "superuser"
        assert "legal work" in task_names()
        assert WorkflowTask.objects.filter(pk=legal.pk).update(priority=99) == 0


def test_the_tasks_of_a_process_a_user_reaches_are_all_listed_with_it(api_as, caseworker_alice, process_across_queues):
    instance, intake, legal = process_across_queues

    response = api_as(caseworker_alice).get(f"/api/workflow/processes/{instance.pk}")

    assert response.status_code == 200, response.content
    assert {t["id"] for t in response.json()["tasks"]} == {intake.pk, legal.pk}
    with acting_as(caseworker_alice):
        assert set(WorkflowTask.objects.filter(process_instance=instance).values_list("pk", flat=True)) == {
            intake.pk,
            legal.pk,
        }
        assert TaskHistory.objects.filter(task=legal).exists()  # history is read with its task


def test_a_process_with_no_task_in_the_users_queues_is_not_found(legal_reviewer_carol, caseworker_alice, make_task):
    instance = _instance_with_tasks(make_task, ["legal-review"])[0]

    with acting_as(caseworker_alice):
        assert not ProcessInstance.objects.filter(pk=instance.pk).exists()
    with acting_as(legal_reviewer_carol):
        assert ProcessInstance.objects.filter(pk=instance.pk).exists()


@pytest.fixture
def process_across_queues(make_task):
    """A process instance with a task in intake (alice's) and one in legal-review (not hers)."""
    return _instance_with_tasks(make_task, ["intake", "legal-review"])


def _instance_with_tasks(make_task, queue_names):
    from tasks.models import WorkflowDefinition

    definition = WorkflowDefinition.objects.create(process_key="rls-probe", version=1, bpmn_xml="<definitions/>")
    instance = ProcessInstance.objects.create(definition=definition, business_key="RLS-1")
    tasks = [make_task(name, name=f"{name} step", process_instance=instance) for name in queue_names]
    return (instance, *tasks)


def test_archived_tasks_are_read_by_the_users_of_their_queue(caseworker_alice, legal_reviewer_carol, make_task):
    archived = _archive(make_task("intake", name="old intake work"))

    with acting_as(caseworker_alice):
        assert ArchivedTask.objects.filter(pk=archived).exists()
    with acting_as(legal_reviewer_carol):
        assert not ArchivedTask.objects.filter(pk=archived).exists()
    with row_scope(NO_ROWS):
        assert not ArchivedTask.objects.exists()


def _archive(task) -> int:
    """Copy a task into the archive as the archive job would (its partitions are the maintenance role's to make)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO flowable.workflow_tasks_archive
                      (task_id, process_instance_id, engine_task_id, task_definition_key, name, description, queue_name,
                       candidate_groups, assignee_id, owner_id, delegation_state, status, priority, due_date,
                       escalation_level, required_skills, variables, form_fields, created_at, claimed_at,
                       completed_at, updated_at)
               SELECT task_id, process_instance_id, engine_task_id, task_definition_key, name, description,
                      queue_name, candidate_groups, assignee_id, owner_id, delegation_state, 'COMPLETED', priority,
                      due_date, escalation_level, required_skills, variables, form_fields, created_at, claimed_at,
                      now(), updated_at
                 FROM flowable.workflow_tasks WHERE task_id = %s""",
            [task.pk],
        )
    return task.pk


# --- the claim functions run as their caller ---------------------------------------------------------------------


def claim_for(user_id: int, queues=None) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM flowable.claim_next_for_user(%s, %s::text[])", [user_id, queues])
        return [name for (name,) in cursor.fetchall()]


def test_the_claim_function_in_no_scope_claims_from_the_callers_queues_only_for_that_call(caseworker_alice, make_task):
    make_task("legal-review", name="urgent legal", priority=100)
    make_task("intake", name="intake work", priority=10)

    with row_scope(NO_ROWS):
        assert claim_for(caseworker_alice.pk) == ["intake work"]
        assert WorkflowTask.objects.count() == 0  # the claim's scope ended with the call
        with connection.cursor() as cursor:
            cursor.execute("SELECT entitlements.acting_user_id()")
            assert cursor.fetchone()[0] is None


def test_the_claim_function_in_the_users_scope_claims_their_best_task(caseworker_alice, make_task):
    make_task("legal-review", name="urgent legal", priority=100)
    make_task("triage", name="triage work", priority=60)
    make_task("intake", name="intake work", priority=10)

    with acting_as(caseworker_alice):
        assert claim_for(caseworker_alice.pk) == ["triage work"]
        assert WorkflowTask.objects.get(name="triage work").status == "CLAIMED"


def test_the_claim_function_refuses_to_claim_for_another_user_than_the_transactions(
    caseworker_alice, legal_reviewer_carol, make_task
):
    make_task("legal-review", name="urgent legal", priority=100)

    with acting_as(caseworker_alice), pytest.raises(DatabaseError, match="may not claim for user"):
        with transaction.atomic():
            claim_for(legal_reviewer_carol.pk)


def test_the_claim_statement_cannot_take_tasks_of_queues_outside_the_scope(caseworker_alice, make_task):
    """flowable.claim_next_task takes the queues from its caller; row-level security still keeps others' out."""
    make_task("legal-review", name="urgent legal", priority=100)

    with acting_as(caseworker_alice), connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM flowable.claim_next_task(%s, ARRAY['legal-review'], ARRAY[]::text[])",
            [caseworker_alice.pk],
        )
        assert cursor.fetchall() == []
    with row_scope(SYSTEM):
        assert WorkflowTask.objects.get(name="urgent legal").status == "OPEN"


def test_claim_next_through_the_api_claims_under_the_users_row_scope(api_as, caseworker_alice, make_task):
    make_task("legal-review", name="urgent legal", priority=100)
    make_task("intake", name="intake work", priority=10)

    response = api_as(caseworker_alice).post("/api/workflow/tasks/claim/next")

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "intake work"


def test_a_row_scope_names_a_user_or_the_system_never_both():
    with pytest.raises(DatabaseError, match="not a row scope"), transaction.atomic():
        with row_scope(RowScope(user_id=1, kind="system")):
            WorkflowTask.objects.exists()


@pytest.fixture
def team_queues(caseworker_alice) -> list[str]:
    """Twenty queues of 250 OPEN tasks alice may work (a role on them)."""
    from entitlements.services import role_assignment_grant, role_save
    from tests.tasks.test_concurrency import open_tasks_in_new_queues

    names = [f"team-{n:02d}" for n in range(20)]
    open_tasks_in_new_queues(5_000, names)
    role = role_save(role_code="team-worker", name="Team worker", queue_names=names, permissions=["view", "work"])
    role_assignment_grant(user=caseworker_alice, role=role)
    return names


def test_the_claim_statement_and_the_inbox_keep_their_indexes_under_row_level_security(team_queues, caseworker_alice):
    """The policies' conditions are filters beside the query's own: its index conditions (leakproof operators)
    still drive the plan."""
    from tasks.selectors import tasks_for_inbox
    from tests.tasks.test_query_plans import assert_probes_each_queue_in_index_order, claim_statement, nodes, plan_of

    with acting_as(caseworker_alice):
        params = {"queues": team_queues, "skills": [], "user": caseworker_alice.pk}
        assert_probes_each_queue_in_index_order(plan_of(claim_statement(), params))
        sql, params = tasks_for_inbox(user=caseworker_alice).query.sql_with_params()
        inbox = list(nodes(plan_of(sql, params)))

    assert any(node.get("Index Name") == "idx_workflow_tasks_assignee_active" for node in inbox), inbox
