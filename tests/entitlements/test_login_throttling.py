"""Login lockouts (django-axes) on the login page and the admin login: per username and address, audited,
unlocked by a superuser; and failed logins counted, not written one audit row each."""

import pytest
from django.test import Client

from entitlements.models import AuthFailureTally, SecurityEvent, User
from tests.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.django_db

ATTACKER = "10.9.8.7"
ELSEWHERE = "10.1.1.1"


def log_in(client, password, *, path="/accounts/login/", username="alice", address=ATTACKER):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail_five_times(client, **where):
    for _ in range(5):
        log_in(client, "wrong", **where)


def test_the_sixth_wrong_password_is_locked_out_and_then_the_right_one_too(client, caseworker_alice, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    fail_five_times(client)
    response = log_in(client, "wrong")
    assert response.status_code == 429
    assert "Login locked" in response.content.decode()
    response = log_in(client, DEMO_PASSWORD)
    assert response.status_code == 429
    assert not logged_in(client)


def test_fewer_failures_than_the_limit_do_not_lock(client, caseworker_alice):
    for _ in range(4):
        log_in(client, "wrong")
    assert log_in(client, DEMO_PASSWORD).status_code == 302
    assert logged_in(client)


def test_a_lockout_is_per_username_and_address(client, caseworker_alice):
    fail_five_times(client)
    other_address = Client()
    assert log_in(other_address, DEMO_PASSWORD, address=ELSEWHERE).status_code == 302
    other_user = Client()
    assert log_in(other_user, DEMO_PASSWORD, username="bob").status_code == 302


def test_the_admin_login_locks_out_too(client, demo_org):
    User.objects.create_superuser("root", "root@example.org", "root-pass-123")
    fail_five_times(client, path="/admin/login/", username="root")
    response = log_in(client, "root-pass-123", path="/admin/login/", username="root")
    assert response.status_code == 429
    assert not logged_in(client)


def test_a_lockout_is_audited_once(client, caseworker_alice):
    fail_five_times(client)
    log_in(client, "wrong")
    log_in(client, DEMO_PASSWORD)
    lockouts = SecurityEvent.objects.filter(event_type="LOGIN_LOCKED_OUT")
    assert [(e.actor_username, e.remote_addr) for e in lockouts] == [("alice", ATTACKER)]


def test_a_superuser_unlocks_a_locked_out_login_in_the_admin(client, caseworker_alice):
    from axes.models import AccessAttempt

    fail_five_times(client)
    root = User.objects.create_superuser("root", "root@example.org", "root-pass-123")
    admin = Client()
    admin.force_login(root)
    attempt = AccessAttempt.objects.get(username="alice", ip_address=ATTACKER)
    response = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert log_in(client, DEMO_PASSWORD).status_code == 302
    assert logged_in(client)


def test_a_supervisor_without_superuser_rights_cannot_unlock(client, supervisor_sam):
    staff = Client()
    staff.force_login(supervisor_sam)
    assert staff.get("/admin/axes/accessattempt/").status_code == 403


def test_failed_logins_from_one_address_write_one_audit_row_and_are_all_counted(caseworker_alice):
    for username in ["alice", "bob", "carol", "nobody", "root"] * 4:
        log_in(Client(), "wrong", username=username)
    failures = SecurityEvent.objects.filter(event_type="LOGIN_FAILURE", remote_addr=ATTACKER)
    assert failures.count() == 1
    tally = AuthFailureTally.objects.get(remote_addr=ATTACKER)
    assert tally.failures == 20


def test_a_failure_in_the_next_audit_window_is_audited_again(caseworker_alice, audit_window_clock):
    log_in(Client(), "wrong")
    log_in(Client(), "wrong")
    audit_window_clock.next_window()
    log_in(Client(), "wrong")
    failures = SecurityEvent.objects.filter(event_type="LOGIN_FAILURE", remote_addr=ATTACKER)
    assert failures.count() == 2
    assert sorted(t.failures for t in AuthFailureTally.objects.filter(remote_addr=ATTACKER)) == [1, 2]
