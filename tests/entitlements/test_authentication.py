"""Identity comes from credentials only; act-as needs the act-as permission and is audited."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from entitlements.models import SecurityEvent
from tasks.models import TaskHistory

pytestmark = pytest.mark.django_db
PROJECT = Path(__file__).resolve().parents[2]


def queue_names(response):
    assert response.status_code == 200, response.content
    return sorted(q["queue_name"] for q in response.json())


def test_api_without_credentials_is_401_with_json_code(api_client):
    response = api_client.get("/api/workflow/tasks/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_invalid_token_is_401_and_audited(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = api_client.get("/api/queues/")
    assert response.status_code == 401
    assert SecurityEvent.objects.filter(event_type="LOGIN_FAILURE").exists()


def test_spoofed_x_user_id_changes_nothing(api_as, caseworker_alice, supervisor_sam):
    client = api_as(caseworker_alice)
    plain = queue_names(client.get("/api/queues/"))
    spoofed = queue_names(client.get("/api/queues/", HTTP_X_USER_ID=str(supervisor_sam.pk)))
    assert plain == spoofed == ["intake", "triage"]


def test_x_user_id_alone_authenticates_nobody(api_client, supervisor_sam):
    response = api_client.get("/api/queues/", HTTP_X_USER_ID=str(supervisor_sam.pk))
    assert response.status_code == 401


def test_integration_acts_on_behalf_of_a_user_and_is_audited(api_as, integration_account, fraud_investigator_bob):
    client = api_as(integration_account)
    assert queue_names(client.get("/api/queues/")) == ["intake"]
    assert queue_names(client.get("/api/queues/", HTTP_X_ON_BEHALF_OF="bob")) == ["fraud-investigation"]
    event = SecurityEvent.objects.filter(event_type="ACT_AS").latest("event_id")
    assert (event.actor_username, event.on_behalf_of_username) == ("integration", "bob")


def test_act_as_records_both_identities_in_task_history(api_as, integration_account, make_task):
    task = make_task("fraud-investigation", required_skills=["fraud"])
    response = api_as(integration_account).post(f"/api/workflow/tasks/{task.pk}/claim", HTTP_X_ON_BEHALF_OF="bob")
    assert response.status_code == 200, response.content
    assert response.json()["assignee"] == "bob"
    event = TaskHistory.objects.get(task=task, event_type="CLAIMED")
    assert (event.actor.username, event.via_account.username) == ("bob", "integration")


def test_act_as_without_permission_is_403_and_audited(api_as, caseworker_alice):
    response = api_as(caseworker_alice).get("/api/queues/", HTTP_X_ON_BEHALF_OF="supervisor")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    event = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED").latest("event_id")
    assert (event.actor_username, event.on_behalf_of_username) == ("alice", "supervisor")


def test_act_as_for_unknown_user_is_403(api_as, integration_account):
    response = api_as(integration_account).get("/api/queues/", HTTP_X_ON_BEHALF_OF="nobody-here")
    assert response.status_code == 403


def test_login_success_and_failure_are_audited(client, caseworker_alice):
    client.post("/accounts/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.1.2.3")
    failure = SecurityEvent.objects.filter(event_type="LOGIN_FAILURE").latest("event_id")
    assert (failure.actor_username, failure.remote_addr) == ("alice", "10.1.2.3")
    response = client.post("/accounts/login/", {"username": "alice", "password": "demo-pass-123"})
    assert response.status_code == 302
    assert SecurityEvent.objects.filter(event_type="LOGIN_SUCCESS", actor=caseworker_alice).exists()


def test_login_page_shows_error_beside_the_form(client, demo_org):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_create_api_token_prints_a_working_token(capsys, caseworker_alice):
    call_command("create_api_token", "alice")
    key = capsys.readouterr().out.strip().splitlines()[-1].split()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/queues/").status_code == 200
    call_command("create_api_token", "alice", "--revoke")
    assert client.get("/api/queues/").status_code == 401


def test_create_api_token_for_unknown_user_fails_with_one_line(test_database_url):
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_token", "no-such-user"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": test_database_url},
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "CommandError: no user named 'no-such-user'"


def test_token_of_an_inactive_user_is_401(api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    caseworker_alice.is_active = False
    caseworker_alice.save(update_fields=["is_active"])
    response = client.get("/api/queues/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_token_authenticates_its_own_user_in_one_query(
    api_as, caseworker_alice, fraud_investigator_bob, django_assert_num_queries
):
    from entitlements.authentication import TokenAuthentication

    api_as(fraud_investigator_bob)
    key = api_as(caseworker_alice).issued.key
    TokenAuthentication().authenticate_credentials(key.encode())  # the first use writes last_used_at
    with django_assert_num_queries(1):
        user, token = TokenAuthentication().authenticate_credentials(key.encode())
    assert (user.pk, user.username, user.is_active, token.user_id) == (
        caseworker_alice.pk,
        "alice",
        True,
        caseworker_alice.pk,
    )


def test_token_with_a_nul_byte_is_401_not_a_server_error(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token abc\x00def")
    response = api_client.get("/api/queues/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


@pytest.mark.parametrize("key", ["x" * 10_000, "clé-ünïcødé", "' OR 1=1 --", "%s%s"])
def test_odd_tokens_are_401_not_a_server_error(api_client, key):
    # The lookup binds the key's first characters as a parameter and compares digests: length, encoding and quoting
    # reach no SQL text.
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = api_client.get("/api/queues/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
