"""Claim-next remembers a user's workable queues and skills (entitlements.work_access_for) and never acts on a
stale answer: every entitlement change takes effect on the next claim, and so does the start or end of a role
assignment's window, with nothing written in between."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from guardian.shortcuts import remove_perm

from entitlements.models import Department, Skill, User, UserRoleAssignment, WorkflowRole
from entitlements.services import role_assignment_grant, role_assignment_revoke, role_save
from queues.models import WorkflowQueue
from tasks.services import task_claim_next
from tests.roles import admin_connect


def epoch() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT epoch FROM entitlements.access_epoch")
        return cursor.fetchone()[0]


def cached_row(user):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT epoch, queue_names, skills FROM entitlements.work_access_cache WHERE user_id = %s", [user.pk]
        )
        return cursor.fetchone()


def in_force_now(**kwargs):
    """Inside a test's transaction PostgreSQL's now() is the transaction's start: grant from before it."""
    return {"valid_from": timezone.now() - timedelta(minutes=1), **kwargs}


def insert_task(queue_name, name):
    from django.db import transaction

    from tasks.services import task_insert

    with transaction.atomic():
        return task_insert(queue=WorkflowQueue.objects.get(queue_name=queue_name), name=name)


def claimed_name(user, **kwargs):
    task = task_claim_next(user=user, **kwargs)
    return task.name if task else None


@pytest.mark.django_db
class TestInvalidation:
    def test_revoking_the_role_stops_claims_at_once(self, caseworker_alice, make_task):
        make_task("intake", name="first")
        make_task("intake", name="second")
        assert claimed_name(caseworker_alice, queue_names=["intake"]) == "first"
        assert "intake" in cached_row(caseworker_alice)[1]
        for assignment in UserRoleAssignment.objects.filter(user=caseworker_alice, role__role_code="intake-caseworker"):
            role_assignment_revoke(assignment_id=assignment.pk)
        assert claimed_name(caseworker_alice, queue_names=["intake"]) is None

    def test_removing_the_queue_permission_stops_claims(self, caseworker_alice, make_task):
        make_task("triage", name="first")
        make_task("triage", name="second")
        assert claimed_name(caseworker_alice, queue_names=["triage"]) == "first"
        role = WorkflowRole.objects.get(role_code="triage-caseworker")
        remove_perm("queues.work_workflowqueue", role.group, WorkflowQueue.objects.get(queue_name="triage"))
        assert claimed_name(caseworker_alice, queue_names=["triage"]) is None

    def test_a_new_grant_is_workable_at_once(self, fraud_investigator_bob, make_task):
        make_task("legal-review", name="legal")
        make_task("fraud-investigation", name="fraud", priority=1)
        assert claimed_name(fraud_investigator_bob, queue_names=["legal-review"]) is None
        role_assignment_grant(
            user=fraud_investigator_bob, role=WorkflowRole.objects.get(role_code="legal-reviewer"), **in_force_now()
        )
        assert claimed_name(fraud_investigator_bob, queue_names=["legal-review"]) == "legal"

    def test_a_deactivated_user_claims_nothing(self, caseworker_alice, make_task):
        make_task("intake", name="first")
        make_task("intake", name="second")
        assert claimed_name(caseworker_alice) == "first"
        User.objects.filter(pk=caseworker_alice.pk).update(is_active=False)
        # The service refuses an inactive user object; the database refuses the stale one it may still hold.
        assert claimed_name(caseworker_alice) is None
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM flowable.claim_next_for_user(%s)", [caseworker_alice.pk])
            assert cursor.fetchone()[0] == 0

    def test_a_lost_skill_counts_at_once(self, fraud_investigator_bob, make_task):
        make_task("fraud-investigation", name="first", required_skills=["fraud"])
        make_task("fraud-investigation", name="second", required_skills=["fraud"])
        assert claimed_name(fraud_investigator_bob) == "first"
        fraud_investigator_bob.skills.remove(Skill.objects.get(skill_code="fraud"))
        assert claimed_name(fraud_investigator_bob) is None

    def test_department_roles_follow_queues_moving_between_departments(self, demo_org, make_task):
        home = Department.objects.create(dept_code="cache-home", dept_name="Cache home")
        elsewhere = Department.objects.create(dept_code="cache-away", dept_name="Cache away")
        queue = WorkflowQueue.objects.get(queue_name="escalations")
        original_department = queue.department_id
        role = role_save(
            role_code="cache-dept", name="Dept worker", queue_names=[], permissions=["work"], department=home
        )
        worker = User.objects.create_user(username="cache-dept-worker")
        role_assignment_grant(user=worker, role=role, **in_force_now())
        make_task("escalations", name="first")
        make_task("escalations", name="second")
        assert claimed_name(worker) is None
        WorkflowQueue.objects.filter(pk=queue.pk).update(department=home)
        assert claimed_name(worker) == "first"
        # A sub-department moved under another parent takes its queues out of the role's subtree.
        Department.objects.filter(pk=home.pk).update(parent=elsewhere)
        role.department = elsewhere
        role.save(update_fields=["department"])
        assert claimed_name(worker) == "second"
        WorkflowQueue.objects.filter(pk=queue.pk).update(department=original_department)
        make_task("escalations", name="third")
        assert claimed_name(worker) is None

    def test_a_renamed_queue_is_claimed_under_its_new_name(self, demo_org, make_task):
        worker = User.objects.create_user(username="cache-rename-worker")
        role_assignment_grant(
            user=worker, role=WorkflowRole.objects.get(role_code="escalations-caseworker"), **in_force_now()
        )
        assert claimed_name(worker) is None  # the queue is empty; its name is now remembered
        WorkflowQueue.objects.filter(queue_name="escalations").update(queue_name="escalations-renamed")
        make_task("escalations-renamed", name="renamed")
        assert claimed_name(worker, queue_names=["escalations"]) is None
        assert claimed_name(worker) == "renamed"


def rule_calls() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT calls FROM pg_stat_xact_user_functions WHERE schemaname = 'entitlements' AND funcname = 'queue_ids_for'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
class TestCaching:
    def test_the_rule_runs_once_while_nothing_changes(self, caseworker_alice, make_task):
        # track_functions is a superuser's setting: let the application role set it for this count.
        with admin_connect(autocommit=True) as admin:
            admin.execute("GRANT SET ON PARAMETER track_functions TO workflow_app")
        for index in range(3):
            make_task("intake", name=f"task-{index}")
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL track_functions = 'all'")
        assert claimed_name(caseworker_alice) is not None
        after_the_first = rule_calls()
        for _ in range(2):
            assert claimed_name(caseworker_alice) is not None
        # The miss asks the rule once per answer it keeps (workable, viewable and supervised queues), and no more.
        assert after_the_first == 3
        assert rule_calls() == after_the_first

    def test_claims_and_queue_bookkeeping_do_not_move_the_epoch(self, caseworker_alice, make_task):
        make_task("intake")
        before = epoch()
        assert task_claim_next(user=caseworker_alice) is not None
        WorkflowQueue.objects.filter(queue_name="intake").update(round_robin_cursor=7, intake_paused=False)
        queue = WorkflowQueue.objects.get(queue_name="intake")
        queue.save()  # a full save that changes neither the name nor the department
        assert epoch() == before

    def test_an_answer_computed_between_two_changes_of_one_transaction_is_not_kept(self, demo_org, make_task):
        worker = User.objects.create_user(username="cache-two-changes")
        assignment = role_assignment_grant(
            user=worker, role=WorkflowRole.objects.get(role_code="legal-reviewer"), **in_force_now()
        )
        make_task("legal-review", name="first")
        make_task("legal-review", name="second")
        assert claimed_name(worker) == "first"  # remembered within this transaction, after the grant
        role_assignment_revoke(assignment_id=assignment.pk)
        assert claimed_name(worker) is None

    def test_an_answer_from_an_older_snapshot_never_replaces_a_newer_one(self, caseworker_alice, make_task):
        make_task("intake")
        current = epoch()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO entitlements.work_access_cache (user_id, epoch, valid_until, queue_names, skills) "
                "VALUES (%s, %s, 'infinity', '{}', '{}')",
                [caseworker_alice.pk, current + 5],
            )
        assert task_claim_next(user=caseworker_alice) is not None  # a miss: answered from the rule
        assert cached_row(caseworker_alice) == (current + 5, [], [])


def transaction_start():
    """PostgreSQL's now() in this connection's transaction: the instant the transaction began."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def committed_elsewhere(action):
    """Run `action` on another connection (another thread's) and let it commit; this connection's transaction
    stays open meanwhile."""
    outcome = {}

    def run():
        try:
            outcome["value"] = action()
        except BaseException as exc:  # re-raised below
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.mark.usefixtures("committed_db")
class TestAssignmentWindows:
    """A window's edge falls between two claims, with nothing written in between, and no waiting for a clock.

    Time is moved by transactions: PostgreSQL's now() is the start of the transaction. The first claim runs in a
    transaction that began before the edge (the edge is set just after its start, by a grant committed from
    another connection meanwhile); the second claim is a transaction of its own, begun after the edge."""

    EDGE_AFTER_START = timedelta(microseconds=1)

    def test_an_assignment_stops_granting_when_its_window_ends(self):
        worker = User.objects.create_user(username="cache-window-end")
        role = WorkflowRole.objects.get(role_code="legal-reviewer")
        insert_task("legal-review", "first")
        insert_task("legal-review", "second")
        with transaction.atomic():
            ends = transaction_start() + self.EDGE_AFTER_START
            committed_elsewhere(
                lambda: role_assignment_grant(
                    user=worker,
                    role=role,
                    valid_from=ends - timedelta(minutes=1),
                    valid_until=ends,
                    temporary_escalation=True,
                    reason="test",
                )
            )
            assert claimed_name(worker) == "first"  # the grant is committed, and now() is before its end
        written = epoch()
        assert transaction_start() > ends  # each statement outside a transaction is one that began after the edge
        assert epoch() == written  # nothing was written: the window alone ends the grant
        assert claimed_name(worker) is None

    def test_an_assignment_starts_granting_when_its_window_opens(self):
        worker = User.objects.create_user(username="cache-window-start")
        role = WorkflowRole.objects.get(role_code="legal-reviewer")
        insert_task("legal-review", "first")
        with transaction.atomic():
            starts = transaction_start() + self.EDGE_AFTER_START
            committed_elsewhere(lambda: role_assignment_grant(user=worker, role=role, valid_from=starts))
            assert claimed_name(worker) is None  # granted, but not yet: now() is before the window opens
        written = epoch()
        assert transaction_start() > starts
        assert epoch() == written
        assert claimed_name(worker) == "first"


@pytest.mark.usefixtures("committed_db")
def test_a_claim_never_waits_for_another_transaction_storing_the_same_users_answer(test_database_url):
    import psycopg

    alice = User.objects.get(username="alice")
    with psycopg.connect(test_database_url, autocommit=True) as setup:
        setup.execute("SELECT * FROM entitlements.work_access_for(%s)", [alice.pk])  # an entry to refresh
        setup.execute("UPDATE entitlements.access_epoch SET epoch = epoch + 1")  # as any entitlement change does
    with psycopg.connect(test_database_url) as first, psycopg.connect(test_database_url, autocommit=True) as second:
        # The first transaction refreshes alice's entry and keeps it locked until it commits.
        first_answer = first.execute("SELECT * FROM entitlements.work_access_for(%s)", [alice.pk]).fetchone()
        second.execute("SET lock_timeout = '2s'")
        second_answer = second.execute("SELECT * FROM entitlements.work_access_for(%s)", [alice.pk]).fetchone()
        assert second_answer == first_answer
        assert "intake" in second_answer[0]
        first.commit()
    assert cached_row(alice)[1] == first_answer[0]


def test_a_read_only_transaction_gets_the_users_row_scope_without_storing_it(caseworker_alice):
    """A hot standby runs every transaction read-only: a read on the replica (core/replica.py) computes its row
    scope there and stores nothing."""
    from entitlements.access import queue_names_for
    from entitlements.models import Capability

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM entitlements.work_access_cache")
        cursor.execute("SET TRANSACTION READ ONLY")
        cursor.execute("SELECT entitlements.row_scope_set(%s, '')", [caseworker_alice.pk])
        cursor.execute("SELECT entitlements.acting_queue_names()")
        scope_queues = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM entitlements.work_access_cache")
        stored = cursor.fetchone()[0]

    assert sorted(scope_queues) == sorted(queue_names_for(user=caseworker_alice, capability=Capability.VIEW))
    assert scope_queues
    assert stored == 0
