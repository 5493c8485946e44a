"""Shared fixtures: the demo organisation's people, API clients, and helpers."""
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from entitlements.models import User


DEMO_PASSWORD = "demo-pass-123"


def seed_demo_org() -> None:
    with open("/dev/null", "w") as quiet:
        call_command("seed_demo", "--password", DEMO_PASSWORD, stdout=quiet)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Seed the demo organisation once per test database; each test's transaction rolls its changes back."""
    with django_db_blocker.unblock():
        seed_demo_org()


@pytest.fixture
def demo_org(db):
    """The seed_demo organisation, with a known password (re-seeded if a transactional test flushed it)."""
    if not User.objects.filter(username="supervisor").exists():
        seed_demo_org()


@pytest.fixture
def caseworker_alice(demo_org) -> User:
    return User.objects.get(username="alice")


@pytest.fixture
def fraud_investigator_bob(demo_org) -> User:
    return User.objects.get(username="bob")


@pytest.fixture
def legal_reviewer_carol(demo_org) -> User:
    return User.objects.get(username="carol")


@pytest.fixture
def supervisor_sam(demo_org) -> User:
    return User.objects.get(username="supervisor")


@pytest.fixture
def integration_account(demo_org) -> User:
    return User.objects.get(username="integration")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_as():
    """An API client authenticated by a real token for the given user."""
    from entitlements.services import api_token_create

    def make(user) -> APIClient:
        client = APIClient()
        token = api_token_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make
