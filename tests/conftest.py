"""Shared fixtures: the demo organisation's people, API clients, and helpers."""
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from entitlements.models import User


@pytest.fixture
def demo_org(db):
    """The seed_demo organisation, with a known password."""
    call_command("seed_demo", "--password", "demo-pass-123", stdout=open("/dev/null", "w"))


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
