"""entitlements.access decides at request time which queues a user may view, work, supervise or deploy to."""

from datetime import timedelta

import pytest
from django.utils import timezone

from entitlements.access import capabilities_by_queue, queue_names_for, queues_for, users_with
from entitlements.models import Department, UserRoleAssignment
from entitlements.services import role_assignment_grant, role_assignment_revoke, role_save
from queues.models import WorkflowQueue
from queues.services import queue_save
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_caseworker_works_only_the_queues_of_her_roles(caseworker_alice):
    assert queue_names_for(user=caseworker_alice, capability="work") == ["intake", "triage"]
    assert queue_names_for(user=caseworker_alice, capability="supervise") == []


def test_work_implies_view_but_not_supervise(fraud_investigator_bob):
    assert capabilities_by_queue(user=fraud_investigator_bob) == {"fraud-investigation": ["view", "work"]}


def test_capabilities_of_every_queue_come_in_one_query(demo_org, django_assert_num_queries):
    """The queue list asks for all four capabilities at once, whatever the number of queues."""
    user = UserFactory()
    viewer = role_save(role_code="viewer-t", name="v", queue_names=["intake", "legal-review"], permissions=["view"])
    worker = role_save(role_code="worker-t", name="w", queue_names=["intake"], permissions=["work", "supervise"])
    for role in (viewer, worker):
        role_assignment_grant(user=user, role=role, valid_from=timezone.now() - timedelta(minutes=1))
    with django_assert_num_queries(1):
        held = capabilities_by_queue(user=user)
    assert held == {"intake": ["view", "work", "supervise"], "legal-review": ["view"]}
    assert capabilities_by_queue(user=UserFactory()) == {}


def test_capabilities_asked_for_are_the_only_ones_answered(supervisor_sam, fraud_investigator_bob):
    assert capabilities_by_queue(user=fraud_investigator_bob, capabilities=("work",)) == {
        "fraud-investigation": ["work"]
    }
    assert capabilities_by_queue(user=supervisor_sam, capabilities=("view", "work")) == {
        name: ["view"] for name in queue_names_for(user=supervisor_sam, capability="view")
    }
    with pytest.raises(ValueError, match="unknown capability 'own'"):
        capabilities_by_queue(user=supervisor_sam, capabilities=("view", "own"))


def test_supervisor_supervises_every_queue_but_does_not_work_them(supervisor_sam):
    assert len(queue_names_for(user=supervisor_sam, capability="supervise")) == 5
    assert queue_names_for(user=supervisor_sam, capability="work") == []


def test_assignment_that_expired_a_second_ago_grants_nothing(demo_org):
    user = UserFactory()
    role = role_save(role_code="legal-temp", name="t", queue_names=["legal-review"], permissions=["view", "work"])
    now = timezone.now()
    role_assignment_grant(
        user=user, role=role, valid_from=now - timedelta(days=1), valid_until=now - timedelta(seconds=1)
    )
    assert queue_names_for(user=user, capability="view") == []


def test_assignment_is_valid_until_its_end(demo_org):
    user = UserFactory()
    role = role_save(role_code="legal-temp", name="t", queue_names=["legal-review"], permissions=["view", "work"])
    now = timezone.now()
    role_assignment_grant(
        user=user, role=role, valid_from=now - timedelta(days=1), valid_until=now + timedelta(hours=1)
    )
    assert queue_names_for(user=user, capability="work") == ["legal-review"]
    assert queue_names_for(user=user, capability="work", at=now + timedelta(hours=1)) == []


def test_future_dated_assignment_grants_nothing_yet(demo_org):
    user = UserFactory()
    role = role_save(role_code="legal-later", name="t", queue_names=["legal-review"], permissions=["view"])
    role_assignment_grant(user=user, role=role, valid_from=timezone.now() + timedelta(minutes=5))
    assert queue_names_for(user=user, capability="view") == []
    assert queue_names_for(user=user, capability="view", at=timezone.now() + timedelta(minutes=6)) == ["legal-review"]


def test_revoked_assignment_grants_nothing(demo_org):
    user = UserFactory()
    role = role_save(role_code="r", name="r", queue_names=["intake"], permissions=["view"])
    assignment = role_assignment_grant(user=user, role=role)
    role_assignment_revoke(assignment_id=assignment.pk)
    assert queue_names_for(user=user, capability="view") == []


def test_temporary_escalation_covers_then_expires(legal_reviewer_carol):
    escalation = UserRoleAssignment.objects.get(user=legal_reviewer_carol, is_temporary_escalation=True)
    assert "triage" in queue_names_for(user=legal_reviewer_carol, capability="work")
    after = escalation.valid_until + timedelta(seconds=1)
    assert queue_names_for(user=legal_reviewer_carol, capability="work", at=after) == ["legal-review"]


def test_department_supervisor_supervises_child_department_queues(demo_org):
    investigations = Department.objects.get(dept_code="investigations")
    head = UserFactory()
    role = role_save(
        role_code="head-of-investigations",
        name="h",
        queue_names=[],
        permissions=["supervise"],
        department=investigations,
    )
    role_assignment_grant(user=head, role=role)
    supervised = queue_names_for(user=head, capability="supervise")
    assert "fraud-investigation" in supervised  # child department Fraud
    assert {"intake", "triage", "escalations"} <= set(supervised)
    assert "legal-review" not in supervised  # Legal is not under Investigations


def test_inactive_user_has_no_queues(caseworker_alice):
    caseworker_alice.is_active = False
    assert queue_names_for(user=caseworker_alice, capability="view") == []


def test_role_change_regrants_queue_permissions(caseworker_alice):
    role_save(
        role_code="intake-caseworker",
        name="Intake",
        queue_names=["intake", "escalations"],
        permissions=["view", "work"],
    )
    assert "escalations" in queue_names_for(user=caseworker_alice, capability="work")
    role_save(role_code="intake-caseworker", name="Intake", queue_names=["intake"], permissions=["view"])
    assert queue_names_for(user=caseworker_alice, capability="work") == ["triage"]


def test_queue_created_later_is_granted_to_roles_naming_it(caseworker_alice):
    role_save(
        role_code="intake-caseworker", name="Intake", queue_names=["intake", "intake-2"], permissions=["view", "work"]
    )
    queue_save(queue_name="intake-2", display_name="Intake 2")
    assert "intake-2" in queue_names_for(user=caseworker_alice, capability="work")


def test_resolving_queues_is_one_query_whatever_the_number_of_roles_and_queues(django_assert_num_queries, demo_org):
    user = UserFactory()
    for n in range(30):
        queue_save(queue_name=f"bulk-{n}", display_name=f"Bulk {n}")
        role = role_save(
            role_code=f"bulk-role-{n}", name="b", queue_names=[f"bulk-{n}", "intake"], permissions=["view", "work"]
        )
        role_assignment_grant(user=user, role=role)
    with django_assert_num_queries(1):
        names = list(queues_for(user=user, capability="work").values_list("queue_name", flat=True))
    assert len(names) == 31


def test_users_with_lists_who_can_work_a_queue_now(demo_org):
    triage = WorkflowQueue.objects.get(queue_name="triage")
    assert sorted(u.username for u in users_with(capability="work", queue=triage)) == ["alice", "carol"]
    later = timezone.now() + timedelta(days=3)
    assert [u.username for u in users_with(capability="work", queue=triage, at=later)] == ["alice"]


# --- one rule, asked both ways ----------------------------------------------------------------------------------


@pytest.fixture
def varied_grants(demo_org):
    """Grants of every kind: a role through its group, a department-scoped role reaching a child department, a
    direct queue permission, an expired and a future assignment, and an inactive user holding a role."""
    from guardian.shortcuts import assign_perm

    from entitlements.models import User

    investigations = Department.objects.get(dept_code="investigations")
    head = UserFactory(username="head")
    role_assignment_grant(
        user=head,
        role=role_save(
            role_code="head-of-investigations",
            name="h",
            queue_names=[],
            permissions=["supervise"],
            department=investigations,
        ),
    )
    direct = UserFactory(username="direct")
    assign_perm("queues.work_workflowqueue", direct, WorkflowQueue.objects.get(queue_name="legal-review"))
    temp = role_save(role_code="legal-temp", name="t", queue_names=["legal-review"], permissions=["view", "work"])
    now = timezone.now()
    role_assignment_grant(
        user=UserFactory(username="expired"),
        role=temp,
        valid_from=now - timedelta(days=2),
        valid_until=now - timedelta(days=1),
    )
    role_assignment_grant(user=UserFactory(username="later"), role=temp, valid_from=now + timedelta(days=1))
    gone = UserFactory(username="gone")
    role_assignment_grant(user=gone, role=temp)
    User.objects.filter(pk=gone.pk).update(is_active=False)


@pytest.mark.parametrize("capability", ["view", "work", "supervise", "deploy"])
def test_users_with_and_queues_for_agree_on_every_user_and_queue(varied_grants, capability):
    from entitlements.models import User

    users, queues = list(User.objects.all()), list(WorkflowQueue.objects.all())
    forward = {(u.pk, q.pk) for u in users for q in queues_for(user=u, capability=capability)}
    inverse = {(u.pk, q.pk) for q in queues for u in users_with(capability=capability, queue=q)}
    assert forward == inverse and forward


def test_users_with_finds_a_department_supervisor_of_a_child_departments_queue(varied_grants):
    fraud = WorkflowQueue.objects.get(queue_name="fraud-investigation")  # Fraud is a child of Investigations
    assert "head" in {u.username for u in users_with(capability="supervise", queue=fraud)}
    legal = WorkflowQueue.objects.get(queue_name="legal-review")
    assert "head" not in {u.username for u in users_with(capability="supervise", queue=legal)}


def test_users_with_finds_a_user_with_a_direct_queue_permission(varied_grants):
    legal = WorkflowQueue.objects.get(queue_name="legal-review")
    assert "direct" in {u.username for u in users_with(capability="work", queue=legal)}
    assert "direct" not in {u.username for u in users_with(capability="supervise", queue=legal)}


def test_users_with_leaves_out_inactive_users_and_assignments_not_in_force(varied_grants):
    legal = WorkflowQueue.objects.get(queue_name="legal-review")
    workers = {u.username for u in users_with(capability="work", queue=legal)}
    assert not {"expired", "later", "gone"} & workers


def test_users_with_is_one_query(django_assert_num_queries, varied_grants):
    legal = WorkflowQueue.objects.get(queue_name="legal-review")
    with django_assert_num_queries(1):
        list(users_with(capability="work", queue=legal))
