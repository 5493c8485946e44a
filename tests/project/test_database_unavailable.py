"""A database that cannot be reached answers 503 with Retry-After (JSON for the API, a page for people), not 500."""

import socket

import pytest
from django.db import connection
from django.test import Client

from entitlements.models import User


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def database_down(committed_db):
    """The default connection points at a port where nothing listens until the test ends."""
    settings_dict = connection.settings_dict
    saved = {key: settings_dict[key] for key in ("HOST", "PORT")}
    connection.close()
    settings_dict.update({"HOST": "127.0.0.1", "PORT": str(closed_port())})

    def database_back() -> None:
        connection.close()
        settings_dict.update(saved)

    yield database_back
    database_back()


@pytest.fixture
def alice_session(committed_db):
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.get(username="alice"))
    return client


@pytest.fixture
def alice_token(committed_db):
    from entitlements.services import api_token_create

    return api_token_create(user=User.objects.get(username="alice")).key


def test_an_api_call_while_the_database_is_down_is_a_503_with_retry_after(alice_token, database_down):
    client = Client(raise_request_exception=False)

    response = client.get("/api/workflow/tasks/", HTTP_AUTHORIZATION=f"Token {alice_token}")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "database_unavailable"


def test_a_write_while_the_database_is_down_is_a_503(alice_token, database_down):
    client = Client(raise_request_exception=False)

    response = client.post("/api/workflow/tasks/claim/next", HTTP_AUTHORIZATION=f"Token {alice_token}")

    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"


def test_a_page_while_the_database_is_down_is_a_plain_try_again_page(alice_session, database_down):
    response = alice_session.get("/inbox/")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert b"try again" in response.content.lower()


def test_the_login_page_post_while_the_database_is_down_is_a_503(database_down):
    client = Client(raise_request_exception=False)

    response = client.post("/accounts/login/", {"username": "alice", "password": "whatever-1"})

    assert response.status_code == 503


def test_readyz_names_the_database_as_down(database_down):
    response = Client().get("/readyz")

    assert response.status_code == 503
    assert "database" in response.json()["down"]


def test_service_comes_back_when_the_database_does(alice_token, database_down):
    client = Client(raise_request_exception=False)
    assert client.get("/api/workflow/tasks/", HTTP_AUTHORIZATION=f"Token {alice_token}").status_code == 503

    database_down()

    assert client.get("/api/workflow/tasks/", HTTP_AUTHORIZATION=f"Token {alice_token}").status_code == 200
