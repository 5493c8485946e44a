"""API tokens: stored as digests, expiring, optionally read-only, last use recorded at most once a minute,
listed and revoked in admin without their key, issued and revoked by create_api_token."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from entitlements.models import ApiToken, SecurityEvent
from entitlements.services import api_token_create

pytestmark = pytest.mark.django_db


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def printed_key(capsys) -> tuple[str, str]:
    out = capsys.readouterr().out
    return out, out.strip().splitlines()[-1].split()[-1]


# --- storage ---------------------------------------------------------------------------------------------------


def test_the_database_holds_a_digest_never_the_key(caseworker_alice):
    key = api_token_create(user=caseworker_alice).key
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM entitlements.api_tokens t")
        rows = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT count(*) FROM public.authtoken_token")
        (plaintext_tokens,) = cursor.fetchone()
    assert rows and not any(key in row for row in rows)
    assert plaintext_tokens == 0


def test_a_key_moved_from_the_plaintext_table_by_the_migration_keeps_working(caseworker_alice):
    from importlib import import_module

    migration = import_module("entitlements.migrations.0008_hashed_api_tokens_and_login_throttling")
    old_key = "0123456789abcdef0123456789abcdef01234567"  # a DRF key: 40 hex characters
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO public.authtoken_token (key, created, user_id) VALUES (%s, now(), %s)",
            [old_key, caseworker_alice.pk],
        )
        cursor.execute(migration.MOVE_DRF_TOKENS)
        cursor.execute("SELECT count(*) FROM public.authtoken_token")
        assert cursor.fetchone() == (0,)
    moved = ApiToken.objects.get(user=caseworker_alice)
    assert timedelta(days=89) < moved.expiry - timezone.now() <= timedelta(days=90)
    assert client_with(old_key).get("/api/queues/").status_code == 200


def test_no_token_memory_is_left_in_the_database():
    """Token lookups are not remembered between requests: migration 0008 dropped the NOTIFY triggers and function
    that the token memory listened to."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE '%%notify_auth_changed%%'")
        triggers = cursor.fetchall()
        cursor.execute("SELECT proname FROM pg_proc WHERE proname = 'notify_auth_changed'")
        functions = cursor.fetchall()
    assert triggers == [] and functions == []


# --- expiry ----------------------------------------------------------------------------------------------------


def test_a_token_expires_after_api_token_ttl_days_by_default(caseworker_alice, settings):
    settings.API_TOKEN_TTL_DAYS = 30
    token = api_token_create(user=caseworker_alice).token
    assert timedelta(days=29, hours=23) < token.expiry - timezone.now() <= timedelta(days=30)


def test_a_token_expired_yesterday_is_401_with_a_clear_detail(api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    ApiToken.objects.filter(user=caseworker_alice).update(expiry=timezone.now() - timedelta(days=1))
    response = client.get("/api/queues/")
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"
    assert "expired" in response.json()["detail"]


def test_a_token_that_never_expired_ten_years_on_is_refused(api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    ApiToken.objects.filter(user=caseworker_alice).update(
        created=timezone.now() - timedelta(days=3650), expiry=timezone.now() - timedelta(days=3560)
    )
    assert client.get("/api/queues/").status_code == 401


def test_a_token_that_expires_in_the_past_cannot_be_issued(caseworker_alice):
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        api_token_create(user=caseworker_alice, expires_in=timedelta(0))
    assert "expires_in" in refused.value.fields


# --- read-only scope -------------------------------------------------------------------------------------------


def test_a_read_only_token_reads(api_as, caseworker_alice):
    assert api_as(caseworker_alice, read_only=True).get("/api/queues/").status_code == 200


def test_a_read_only_token_cannot_post_and_the_refusal_is_audited(api_as, caseworker_alice, make_task):
    make_task("intake")
    response = api_as(caseworker_alice, read_only=True, name="dashboard").post("/api/workflow/tasks/claim/next")
    assert response.status_code == 403
    assert response.json()["code"] == "token_read_only"
    event = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED").latest("event_id")
    assert (event.actor_username, event.details["method"], event.details["token"]) == ("alice", "POST", "dashboard")
    assert SecurityEvent.objects.filter(event_type="PERMISSION_DENIED").count() == 1


def test_a_read_write_token_may_post(api_as, caseworker_alice, make_task):
    make_task("intake")
    assert api_as(caseworker_alice).post("/api/workflow/tasks/claim/next").status_code == 200


# --- last use --------------------------------------------------------------------------------------------------


def test_last_used_at_moves_at_most_once_a_minute(api_as, caseworker_alice, monkeypatch):
    client = api_as(caseworker_alice)
    start = timezone.now()
    clock = [start]
    monkeypatch.setattr(timezone, "now", lambda: clock[0])

    def last_used():
        return ApiToken.objects.get(user=caseworker_alice).last_used_at

    assert last_used() is None
    client.get("/api/queues/")
    assert last_used() == start
    clock[0] = start + timedelta(seconds=59)
    client.get("/api/queues/")
    assert last_used() == start
    clock[0] = start + timedelta(seconds=61)
    client.get("/api/queues/")
    assert last_used() == start + timedelta(seconds=61)


def test_a_request_within_the_minute_writes_nothing_for_last_use(api_as, caseworker_alice):
    from django.test.utils import CaptureQueriesContext

    client = api_as(caseworker_alice)
    client.get("/api/queues/")
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/queues/")
    assert not [q for q in queries.captured_queries if "api_tokens" in q["sql"] and q["sql"].startswith("UPDATE")]


# --- admin -----------------------------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(demo_org):
    from django.test import Client

    from entitlements.models import User

    admin_user = User.objects.create_superuser("root", "root@example.org", "root-pass-123")
    client = Client()
    client.force_login(admin_user)
    return client


def test_the_admin_token_pages_never_show_a_key(superuser_client, caseworker_alice):
    issued = api_token_create(user=caseworker_alice, name="erp")
    listing = superuser_client.get("/admin/entitlements/apitoken/")
    detail = superuser_client.get(f"/admin/entitlements/apitoken/{issued.token.pk}/change/")
    assert listing.status_code == detail.status_code == 200
    for page in (listing.content.decode(), detail.content.decode()):
        assert "erp" in page
        assert issued.key[:8] not in page


def test_the_plaintext_token_admin_page_is_gone(superuser_client):
    assert superuser_client.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_the_admin_revokes_a_token_through_the_audited_service(superuser_client, caseworker_alice):
    kept = api_token_create(user=caseworker_alice, name="kept")
    revoked = api_token_create(user=caseworker_alice, name="revoked")
    response = superuser_client.post(
        "/admin/entitlements/apitoken/", {"action": "revoke", "_selected_action": [revoked.token.pk]}
    )
    assert response.status_code == 302
    assert client_with(revoked.key).get("/api/queues/").status_code == 401
    assert client_with(kept.key).get("/api/queues/").status_code == 200
    event = SecurityEvent.objects.filter(event_type="TOKEN_REVOKED").latest("event_id")
    assert (event.actor_username, event.details["user"], event.details["count"]) == ("root", "alice", 1)


# --- create_api_token ------------------------------------------------------------------------------------------


def test_create_api_token_adds_a_token_and_says_how_many_the_user_holds(capsys, caseworker_alice):
    call_command("create_api_token", "alice")
    _, first = printed_key(capsys)
    call_command("create_api_token", "alice")
    out, second = printed_key(capsys)
    assert "alice now holds 2 token(s)" in out
    assert "cannot be shown again" in out
    assert client_with(first).get("/api/queues/").status_code == 200
    assert client_with(second).get("/api/queues/").status_code == 200


def test_create_api_token_replace_says_it_replaced_the_old_token(capsys, caseworker_alice):
    call_command("create_api_token", "alice")
    _, old = printed_key(capsys)
    call_command("create_api_token", "alice", "--replace")
    out, new = printed_key(capsys)
    assert "Replaced (revoked) 1 earlier token(s) of alice" in out
    assert client_with(old).get("/api/queues/").status_code == 401
    assert client_with(new).get("/api/queues/").status_code == 200


def test_create_api_token_options_set_expiry_scope_and_name(capsys, caseworker_alice):
    call_command("create_api_token", "alice", "--expires-days", "7", "--read-only", "--name", "reports")
    out, _ = printed_key(capsys)
    token = ApiToken.objects.get(user=caseworker_alice)
    assert (token.name, token.read_only) == ("reports", True)
    assert timedelta(days=6, hours=23) < token.expiry - timezone.now() <= timedelta(days=7)
    assert "Read-only token, expires" in out
    created = SecurityEvent.objects.filter(event_type="TOKEN_CREATED").latest("event_id")
    assert (created.details["user"], created.details["read_only"], created.details["name"]) == (
        "alice",
        True,
        "reports",
    )


def test_create_api_token_revoke_with_a_name_revokes_only_that_token(capsys, caseworker_alice):
    erp = api_token_create(user=caseworker_alice, name="erp")
    other = api_token_create(user=caseworker_alice, name="other")
    call_command("create_api_token", "alice", "--revoke", "--name", "erp")
    assert "Revoked 1 token(s) named 'erp' of alice." in capsys.readouterr().out
    assert client_with(erp.key).get("/api/queues/").status_code == 401
    assert client_with(other.key).get("/api/queues/").status_code == 200


def test_create_api_token_refuses_a_non_positive_expiry(caseworker_alice):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_token", "alice", "--expires-days", "0")
    assert not ApiToken.objects.filter(user=caseworker_alice).exists()
