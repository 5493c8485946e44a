"""API token lookups remembered per connection, and forgotten as soon as a token or user changes anywhere."""
import select

import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from entitlements import authentication, token_memory
from entitlements.models import User

CLAIM_NEXT = "/api/workflow/tasks/claim/next"  # 204 here: one statement besides the token lookup


def token_lookups(queries) -> int:
    return sum("authtoken_token" in query["sql"] for query in queries)


def post_counting_lookups(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.post(CLAIM_NEXT)
    return response.status_code, token_lookups(queries)


def wait_for_the_notification():
    """Until the server has sent something to this connection: what a request after a commit elsewhere sees."""
    readable, _, _ = select.select([connection.connection.pgconn.socket], [], [], 5.0)
    assert readable, "no notification reached the connection"


@pytest.fixture
def alice(committed_api_as):
    client = committed_api_as("alice")
    assert post_counting_lookups(client) == (204, 1)  # looked up, now remembered
    return client


def test_a_remembered_token_is_not_looked_up_again(alice):
    assert post_counting_lookups(alice) == (204, 0)
    assert post_counting_lookups(alice) == (204, 0)


def test_a_token_revoked_elsewhere_is_refused_by_the_next_request(alice, test_database_url):
    assert post_counting_lookups(alice) == (204, 0)
    with psycopg.connect(test_database_url, autocommit=True) as other:
        other.execute("DELETE FROM authtoken_token t USING entitlements.users u "
                      "WHERE u.id = t.user_id AND u.username = 'alice'")
    wait_for_the_notification()
    assert post_counting_lookups(alice) == (401, 1)


def test_a_user_deactivated_elsewhere_is_refused_by_the_next_request(alice, test_database_url):
    assert post_counting_lookups(alice) == (204, 0)
    deactivate = "UPDATE entitlements.users SET is_active = %s WHERE username = 'alice'"
    with psycopg.connect(test_database_url, autocommit=True) as other:
        other.execute(deactivate, [False])
        try:
            wait_for_the_notification()
            assert post_counting_lookups(alice) == (401, 1)
        finally:
            other.execute(deactivate, [True])


def test_a_change_made_in_this_process_is_seen_at_once(alice):
    # The connection listens to its own notifications too: they come back with the UPDATE's answer.
    User.objects.filter(username="alice").update(is_active=False)
    try:
        assert post_counting_lookups(alice) == (401, 1)
    finally:
        User.objects.filter(username="alice").update(is_active=True)


def test_a_lookup_answered_together_with_a_notification_is_not_remembered(
    committed_api_as, test_database_url, monkeypatch
):
    """The token is revoked while its lookup is in flight; the notification comes in with the next statement's
    answer, before the lookup's row would be remembered. That row predates the revocation: keeping it would let the
    revoked token in until the entry grew old."""
    client = committed_api_as("alice")
    assert post_counting_lookups(client) == (204, 1)  # the connection listens now
    connection._token_memory.rows.clear()
    real_lookup = authentication.fetch_one_read_only

    def lookup_then_revoke(statement, params):
        row = real_lookup(statement, params)
        with psycopg.connect(test_database_url, autocommit=True) as other:
            other.execute("DELETE FROM authtoken_token WHERE key = %s", params)
        wait_for_the_notification()
        real_lookup("SELECT 1", [])  # psycopg takes the notification in with this answer
        return row

    monkeypatch.setattr(authentication, "fetch_one_read_only", lookup_then_revoke)
    assert post_counting_lookups(client) == (204, 1)  # this request was already past authentication
    monkeypatch.undo()
    assert post_counting_lookups(client) == (401, 1)


def test_inside_a_transaction_every_request_looks_its_token_up(alice):
    with transaction.atomic():
        assert post_counting_lookups(alice) == (204, 1)
        assert post_counting_lookups(alice) == (204, 1)


def test_a_new_connection_starts_with_nothing_remembered(alice):
    connection.close()
    assert post_counting_lookups(alice) == (204, 1)
    assert post_counting_lookups(alice) == (204, 0)


def test_a_connection_the_server_closed_is_noticed_and_replaced(alice, test_database_url):
    with psycopg.connect(test_database_url, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    wait_for_the_notification()  # the server's goodbye
    assert post_counting_lookups(alice) == (204, 1)  # not a 500: looked up on a new connection


def test_an_old_entry_is_looked_up_again(alice, monkeypatch):
    monkeypatch.setattr(token_memory, "MAX_AGE_SECONDS", 0.0)
    assert post_counting_lookups(alice) == (204, 1)


def test_turned_off_every_request_looks_its_token_up(alice, settings):
    settings.API_TOKEN_MEMORY = False
    assert post_counting_lookups(alice) == (204, 1)
    assert post_counting_lookups(alice) == (204, 1)


def nothing_sent_to_the_connection_within(seconds):
    readable, _, _ = select.select([connection.connection.pgconn.socket], [], [], seconds)
    return not readable


def test_a_login_elsewhere_does_not_make_the_connection_forget(alice, test_database_url):
    with psycopg.connect(test_database_url, autocommit=True) as other:
        other.execute("UPDATE entitlements.users SET last_login = now() WHERE username = 'alice'")
    assert nothing_sent_to_the_connection_within(0.3)
    assert post_counting_lookups(alice) == (204, 0)


def test_any_other_change_to_the_user_row_is_noticed(alice, test_database_url):
    with psycopg.connect(test_database_url, autocommit=True) as other:
        other.execute("UPDATE entitlements.users SET first_name = first_name || '' WHERE username = 'alice'")
        other.execute("UPDATE entitlements.users SET is_staff = NOT is_staff WHERE username = 'alice'")
        try:
            wait_for_the_notification()
            assert post_counting_lookups(alice) == (204, 1)
        finally:
            other.execute("UPDATE entitlements.users SET is_staff = NOT is_staff WHERE username = 'alice'")


def test_a_revocation_applied_as_a_replica_notifies_too(alice, test_database_url):
    """session_replication_role = replica (logical replication, restores) turns ordinary triggers off."""
    with psycopg.connect(test_database_url, autocommit=True) as other:
        other.execute("SET session_replication_role = replica")
        other.execute("DELETE FROM authtoken_token t USING entitlements.users u "
                      "WHERE u.id = t.user_id AND u.username = 'alice'")
    wait_for_the_notification()
    assert post_counting_lookups(alice) == (401, 1)


def test_after_an_idle_spell_the_lookup_runs_again(alice, monkeypatch):
    """Reading the socket cannot tell a connection that died silently: the lookup is the health check again."""
    monkeypatch.setattr(token_memory, "TRUSTED_AFTER_ROUND_TRIP_SECONDS", 0.0)
    assert post_counting_lookups(alice) == (204, 1)


def test_a_server_that_refuses_listen_leaves_the_connection_without_memory(committed_api_as, monkeypatch):
    monkeypatch.setattr(token_memory, "CHANNEL", "1 not a channel")  # the server answers LISTEN with an error
    client = committed_api_as("alice")
    connection.close()
    assert post_counting_lookups(client) == (204, 1)  # not a 500
    assert post_counting_lookups(client) == (204, 1)
    assert connection._token_memory_refused_by is connection.connection
