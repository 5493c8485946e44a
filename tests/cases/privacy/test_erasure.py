"""erase_subject and the admin action: a person's identifiers gone from every table, history kept row for row."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_results.models import TaskResult

from cases.models import CaseEvent, CaseSubject, CaseWorkflowMapping
from cases.privacy.erasure import CODE_COLUMNS, PERSONAL_TEXT, WITHOUT_PERSONAL_TEXT, user_erase
from core.errors import Conflict, PermissionDenied
from entitlements.models import ApiToken, SecurityEvent, User, UserRoleAssignment, WorkflowRole
from entitlements.services import api_token_create, role_assignment_grant
from queues.models import WorkflowQueue
from tasks.models import ArchivedTaskHistory, TaskHistory, WorkflowTask
from tasks.services import task_insert
from tests.conftest import DEMO_PASSWORD
from tests.factories import UserFactory

from .conftest import scalar, text_columns, where_found

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
ALICE = ("alice", "Adams")  # username (also in her email and, any case, her first name) and last name
REASON = "Left in 2026; Alice Adams asked for erasure"


@pytest.fixture
def superuser(demo_org) -> User:
    return UserFactory(username="root-admin", is_superuser=True, is_staff=True)


@pytest.fixture
def alice_everywhere(
    client, api_as, closed_case, caseworker_alice, integration_account, superuser, legal_reviewer_carol
):
    """alice's identifiers copied into every kind of row that takes them: what a year of her work leaves."""
    closed_case("ERAOPEN", subjects=(("COMPLAINANT", "Zora Fenn", "zora@example.net"),))
    closed_case("ERAARCH", archived=True)
    task = WorkflowTask.objects.filter(status="COMPLETED").first()
    TaskHistory.objects.create(
        task=task,
        event_type="COMMENTED",
        actor=legal_reviewer_carol,
        comment="Asked Alice Adams (alice@example.org) again",
    )
    # Logins: a failure (axes, tally, audit) and a success (axes log, audit, session).
    client.post("/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.7")
    assert client.post("/accounts/login/", {"username": "alice", "password": DEMO_PASSWORD}).status_code == 302
    # An integration acting for her; a token of hers; a role granted with a reason naming her.
    assert api_as(integration_account).get("/api/queues/", HTTP_X_ON_BEHALF_OF="alice").status_code == 200
    api_token_create(user=caseworker_alice, name="alice laptop")
    role_assignment_grant(
        user=caseworker_alice,
        role=WorkflowRole.objects.get(role_code="legal-reviewer"),
        granted_by=superuser,
        reason="alice covers legal while carol is away",
    )
    LogEntry.objects.create(
        user=superuser,
        content_type=ContentType.objects.get_for_model(User),
        object_id=str(caseworker_alice.pk),
        object_repr="alice",
        action_flag=CHANGE,
        change_message="Changed Alice Adams' department",
    )
    TaskResult.objects.create(
        task_id="job-1",
        task_name="workflow.sla_check",
        task_kwargs="{'username': 'alice'}",
        result='{"by": "alice"}',
        status="SUCCESS",
    )
    before = where_found(*ALICE)
    for column in (
        "entitlements.users.username",
        "entitlements.security_events.actor_username",
        "entitlements.security_events.on_behalf_of_username",
        "entitlements.security_events.details",
        "entitlements.api_tokens.name",
        "entitlements.user_role_assignments.reason",
        "entitlements.auth_failure_tallies.last_username",
        "flowable.task_history.new_values",
        "flowable.task_history.comment",
        "flowable.task_history_archive.new_values",
        "onecms.case_workflow_mapping.routing_history",
        "public.axes_accessattempt.username",
        "public.axes_accesslog.username",
        "public.django_admin_log.object_repr",
        "public.django_celery_results_taskresult.task_kwargs",
    ):
        assert column in before, f"the fixture should put alice into {column}"
    return caseworker_alice


def test_every_text_column_is_either_scrubbed_or_declared_free_of_personal_data(db):
    scrubbed = {f"{target.table}.{column}" for target in PERSONAL_TEXT for column, _ in target.columns}

    undecided = [
        f"{schema}.{table}.{column}"
        for schema, table, column in text_columns(partitions=False)
        if f"{schema}.{table}.{column}" not in scrubbed
        and f"{schema}.{table}" not in WITHOUT_PERSONAL_TEXT
        and f"{schema}.{table}.{column}" not in WITHOUT_PERSONAL_TEXT
        and column not in CODE_COLUMNS
    ]

    assert undecided == [], "add each to PERSONAL_TEXT or WITHOUT_PERSONAL_TEXT (cases/privacy/erasure.py)"


def test_an_alert_recipient_address_of_the_person_is_removed_from_the_channel(caseworker_alice):
    from tasks.models import AlertChannel

    channel = AlertChannel.objects.create(
        name="alice on call", kind="EMAIL", email_recipients=["alice@example.org", "ops@example.org"]
    )

    user_erase(user_id=caseworker_alice.pk, reason=REASON)

    channel.refresh_from_db()
    assert (channel.name, channel.email_recipients) == (
        f"erased-user-{caseworker_alice.pk} on call",
        ["ops@example.org"],
    )


def history_counts() -> dict:
    return {
        "task_history": TaskHistory.objects.count(),
        "task_history_archive": ArchivedTaskHistory.objects.count(),
        "case_events": CaseEvent.objects.count(),
        "security_events": SecurityEvent.objects.count(),
        "routing_hops": scalar(
            "SELECT coalesce(sum(jsonb_array_length(routing_history)), 0) FROM onecms.case_workflow_mapping"
        ),
        "role_assignments": UserRoleAssignment.objects.count(),
        "admin_log": LogEntry.objects.count(),
        "axes_attempts": scalar("SELECT count(*) FROM axes_accessattempt"),
        "axes_log": scalar("SELECT count(*) FROM axes_accesslog"),
        "job_results": TaskResult.objects.count(),
        "tasks_held": WorkflowTask.objects.filter(assignee__username="alice").count(),
    }


def test_erasing_a_user_leaves_none_of_their_identifiers_in_any_text_column(alice_everywhere, superuser):
    before = history_counts()

    out = io.StringIO()
    call_command("erase_subject", "--user", "alice", "--reason", REASON, "--as-user", "root-admin", stdout=out)

    assert where_found(*ALICE) == {}
    pseudonym = f"erased-user-{alice_everywhere.pk}"
    assert f"now {pseudonym}" in out.getvalue()
    after = history_counts()
    assert after == {**before, "security_events": before["security_events"] + 1, "tasks_held": 0}
    assert WorkflowTask.objects.filter(assignee=alice_everywhere).count() == before["tasks_held"]


def test_the_erased_user_row_is_the_pseudonym_and_can_no_longer_log_in(alice_everywhere, client):
    user_erase(user_id=alice_everywhere.pk, reason=REASON)

    user = User.objects.get(pk=alice_everywhere.pk)
    assert (user.username, user.email, user.first_name, user.last_name, user.is_active) == (
        f"erased-user-{user.pk}",
        "",
        "",
        "",
        False,
    )
    assert not user.has_usable_password()
    assert not ApiToken.objects.filter(user=user).exists()
    assert not any(s.get_decoded().get("_auth_user_id") == str(user.pk) for s in Session.objects.all())
    response = client.post("/accounts/login/", {"username": user.username, "password": DEMO_PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_the_erasure_is_recorded_with_who_whom_when_and_why_without_the_erased_data(alice_everywhere, superuser):
    result = user_erase(user_id=alice_everywhere.pk, reason=REASON, erased_by=superuser)

    event = SecurityEvent.objects.get(pk=result.event_id)
    assert (event.event_type, event.actor_id, event.actor_username) == (
        "PERSONAL_DATA_ERASED",
        superuser.pk,
        "root-admin",
    )
    assert event.details["user_id"] == alice_everywhere.pk and event.details["pseudonym"] == result.pseudonym
    assert event.details["reason"] == f"Left in 2026; {result.pseudonym} asked for erasure"
    assert event.details["rows_rewritten"]["flowable.task_history"] > 0
    assert event.details["sessions_ended"] == 1 and event.details["tokens_revoked"] >= 1


def test_erasing_a_case_subject_by_email_removes_their_name_email_and_phone_everywhere(closed_case):
    person = ("SUBJECT", "Quentin Marlowe", "q.marlowe@example.net")
    first = closed_case("ERASUBJ1", subjects=(person, ("WITNESS", "Ida Brook", "ida@example.net")))
    second = closed_case("ERASUBJ2", subjects=(person,), closed_years_ago=1)
    CaseEvent.objects.create(case=second, event_type="NOTE", new_values={"note": "Quentin Marlowe called twice"})
    assert where_found("Quentin Marlowe", "q.marlowe", "20 7946 0000")

    out = io.StringIO()
    call_command(
        "erase_subject", "--subject-email", "Q.Marlowe@example.net", "--reason", "request of 2026-11-30", stdout=out
    )

    assert "Erased 2 case subject(s)" in out.getvalue()
    assert where_found("Quentin Marlowe", "q.marlowe") == {}
    erased = CaseSubject.objects.filter(case__in=[first, second], role="SUBJECT")
    assert {(s.full_name, s.email, s.phone, s.notes, s.date_of_birth) for s in erased} == {
        (f"erased-subject-{min(erased.values_list('pk', flat=True))}", "", "", "", None)
    }
    witness = CaseSubject.objects.get(case=first, role="WITNESS")
    assert (witness.full_name, witness.email) == ("Ida Brook", "ida@example.net")


def test_erasure_keeps_routing_hops_with_the_pseudonym_as_their_actor(alice_everywhere):
    result = user_erase(user_id=alice_everywhere.pk, reason=REASON)

    actors = {hop["by"] for m in CaseWorkflowMapping.objects.all() for hop in m.routing_history}
    assert result.pseudonym in actors and "alice" not in actors


def test_a_user_holding_claimed_tasks_is_not_erased(make_task, caseworker_alice):
    from tasks.services import task_claim

    task_claim(user=caseworker_alice, task_id=make_task("intake").pk)

    with pytest.raises(Conflict, match="holds 1 claimed or delegated task"):
        user_erase(user_id=caseworker_alice.pk, reason=REASON)
    assert User.objects.get(pk=caseworker_alice.pk).username == "alice"


def test_only_a_superuser_may_erase(caseworker_alice, supervisor_sam):
    with pytest.raises(PermissionDenied):
        user_erase(user_id=caseworker_alice.pk, reason=REASON, erased_by=supervisor_sam)
    assert User.objects.get(pk=caseworker_alice.pk).username == "alice"


def test_erasing_twice_is_refused(caseworker_alice):
    user_erase(user_id=caseworker_alice.pk, reason=REASON)

    with pytest.raises(Conflict, match="already erased"):
        user_erase(user_id=caseworker_alice.pk, reason=REASON)


def test_an_unknown_subject_email_is_one_line(demo_org):
    with pytest.raises(CommandError, match=r"^no case subject with email 'nobody@example\.net'$"):
        call_command("erase_subject", "--subject-email", "nobody@example.net", "--reason", "x")


def test_an_unknown_user_exits_non_zero_with_one_readable_line(test_database_url):
    done = subprocess.run(
        [sys.executable, "manage.py", "erase_subject", "--user", "nobody", "--reason", "left"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": test_database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["CommandError: no user 'nobody'"]


# --- admin ------------------------------------------------------------------------------------------------------


@pytest.fixture
def jobs_run_in_process():
    """The erasure the admin queues runs in the request (Celery's eager mode), for the page's own behaviour; the
    real worker taking it off the broker is test_erasure_job.py's."""
    from workflow_project.celery import app

    before = {"task_always_eager": app.conf.task_always_eager, "task_eager_propagates": app.conf.task_eager_propagates}
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(before)


def erase_in_admin(client, user_ids, *, reason="left the organisation"):
    return client.post(
        "/admin/entitlements/user/",
        {"action": "erase_users", "_selected_action": [str(pk) for pk in user_ids], "reason": reason, "apply": "Erase"},
        follow=True,
    )


def test_a_superuser_erases_a_user_from_the_user_list(client, superuser, fraud_investigator_bob, jobs_run_in_process):
    client.force_login(superuser)
    page = client.post(
        "/admin/entitlements/user/", {"action": "erase_users", "_selected_action": [str(fraud_investigator_bob.pk)]}
    )
    assert page.status_code == 200 and b'name="reason"' in page.content

    response = erase_in_admin(client, [fraud_investigator_bob.pk])

    assert "Queued the erasure of 1 user(s)." in response.content.decode()
    assert User.objects.get(pk=fraud_investigator_bob.pk).username == f"erased-user-{fraud_investigator_bob.pk}"
    event = SecurityEvent.objects.filter(event_type="PERSONAL_DATA_ERASED").latest("event_id")
    assert (event.actor_id, event.path) == (superuser.pk, "/admin/entitlements/user/")


def test_a_staff_supervisor_is_not_offered_erasure_and_cannot_post_it(client, supervisor_sam, fraud_investigator_bob):
    client.force_login(supervisor_sam)
    listing = client.get("/admin/entitlements/user/").content.decode()
    assert "erase_users" not in listing

    erase_in_admin(client, [fraud_investigator_bob.pk])

    assert User.objects.get(pk=fraud_investigator_bob.pk).username == "bob"
    assert not SecurityEvent.objects.filter(event_type="PERSONAL_DATA_ERASED").exists()


def test_a_refusal_shows_at_once_and_queues_nothing(client, superuser, fraud_investigator_bob, monkeypatch):
    task = task_insert(queue=WorkflowQueue.objects.get(queue_name="triage"), name="held by bob")
    WorkflowTask.objects.filter(pk=task.pk).update(status="CLAIMED", assignee=fraud_investigator_bob)
    queued = []
    monkeypatch.setattr("cases.admin.erasure_queue", lambda **kwargs: queued.append(kwargs))
    client.force_login(superuser)

    page = erase_in_admin(client, [fraud_investigator_bob.pk, superuser.pk]).content.decode()

    assert f"Not erased: #{fraud_investigator_bob.pk}: user {fraud_investigator_bob.pk} holds 1 claimed" in page
    assert f"Not erased: #{superuser.pk}: a user cannot erase themselves" in page
    assert queued == [] and "Queued" not in page
    assert User.objects.get(pk=fraud_investigator_bob.pk).username == "bob"


def test_a_superuser_erases_a_case_subject_from_the_subject_list(client, superuser, closed_case, jobs_run_in_process):
    case = closed_case("ERAADMIN", subjects=(("SUBJECT", "Piet Hein", "piet@example.net"),))
    subject = CaseSubject.objects.get(case=case)
    client.force_login(superuser)

    client.post(
        "/admin/cases/casesubject/",
        {"action": "erase_case_subjects", "_selected_action": [str(subject.pk)], "reason": "asked", "apply": "Erase"},
    )

    assert where_found("Piet Hein", "piet@example") == {}


def test_check_integrity_passes_after_an_erasure(alice_everywhere):
    user_erase(user_id=alice_everywhere.pk, reason=REASON)

    out = io.StringIO()
    call_command("check_integrity", stdout=out)
    assert "All invariants hold." in out.getvalue()


def test_a_queued_erasure_answers_with_a_result_that_names_no_one(superuser, fraud_investigator_bob):
    from cases.privacy.erasure import person_erase

    done = person_erase(kind="user", target_ids=[fraud_investigator_bob.pk], reason="left", erased_by_id=superuser.pk)

    assert done["erased"] is True and done["pseudonym"] == f"erased-user-{fraud_investigator_bob.pk}"
    assert "bob" not in str(done)
    assert (
        person_erase(kind="user", target_ids=[fraud_investigator_bob.pk], reason="x", erased_by_id=superuser.pk)["code"]
        == "already_erased"
    )


@pytest.mark.parametrize(
    "kind, ids, asker, code",
    [
        ("user", [1, 2], "root", "invalid"),
        ("nobody", [1], "root", "invalid"),
        ("user", [1], "gone", "erasure_refused"),
    ],
)
def test_a_queued_erasure_that_cannot_run_is_a_refusal_not_an_error(superuser, kind, ids, asker, code):
    from cases.privacy.erasure import person_erase

    asker_id = superuser.pk if asker == "root" else 10**9
    done = person_erase(kind=kind, target_ids=ids, reason="left", erased_by_id=asker_id)

    assert done["erased"] is False and done["code"] == code
