"""API rate limits: per account and per anonymous address (429 with Retry-After, in the API's error shape), failed
tokens per address before any lookup, failed-token floods counted rather than audited row by row, and a cache
outage that lets requests through instead of failing them."""

import pytest
from rest_framework.test import APIClient, APIRequestFactory

from entitlements.models import AuthFailureTally, SecurityEvent
from entitlements.throttling import AccountRateThrottle, AnonymousAddressRateThrottle, FailedTokenLimit

pytestmark = pytest.mark.django_db

FLOODER = "10.6.6.6"


@pytest.fixture
def rates(settings):
    """Set some API rates for one test (the others keep their settings)."""

    def set_rates(**changed):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **changed},
        }

    return set_rates


def bad_token_client() -> APIClient:
    client = APIClient(REMOTE_ADDR=FLOODER)
    client.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")
    return client


def test_the_per_account_rate_answers_429_with_retry_after(api_as, caseworker_alice, rates):
    rates(account="3/minute")
    client = api_as(caseworker_alice)
    assert [client.get("/api/queues/").status_code for _ in range(3)] == [200, 200, 200]
    response = client.get("/api/queues/")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


def test_the_per_account_rate_counts_each_account_apart(api_as, caseworker_alice, fraud_investigator_bob, rates):
    rates(account="1/minute")
    alice, bob = api_as(caseworker_alice), api_as(fraud_investigator_bob)
    assert alice.get("/api/queues/").status_code == 200
    assert bob.get("/api/queues/").status_code == 200
    assert alice.get("/api/queues/").status_code == 429


def test_an_integration_acting_for_users_is_counted_as_itself(
    api_as, integration_account, fraud_investigator_bob, rates
):
    rates(account="1/minute")
    client = api_as(integration_account)
    assert client.get("/api/queues/", HTTP_X_ON_BEHALF_OF="bob").status_code == 200
    assert client.get("/api/queues/", HTTP_X_ON_BEHALF_OF="alice").status_code == 429


def test_the_rate_limit_can_be_turned_off(api_as, caseworker_alice, rates):
    rates(account=None)
    client = api_as(caseworker_alice)
    assert {client.get("/api/queues/").status_code for _ in range(5)} == {200}


def test_the_anonymous_rate_counts_per_address_and_ignores_x_forwarded_for(rates):
    from rest_framework.request import Request

    rates(anonymous="2/minute")
    factory = APIRequestFactory()

    def allowed(address, forwarded_for):
        request = Request(factory.get("/api/schema/", REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=forwarded_for))
        request.user = None
        return AnonymousAddressRateThrottle().allow_request(request, None)

    assert [allowed(FLOODER, f"192.0.2.{n}") for n in range(3)] == [True, True, False]
    assert allowed("10.0.0.1", "192.0.2.9")


def test_bad_tokens_from_one_address_are_refused_with_429_before_any_lookup(api_as, caseworker_alice, rates):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rates(bad_token="3/minute")
    client = bad_token_client()
    assert [client.get("/api/queues/").status_code for _ in range(3)] == [401, 401, 401]
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/queues/")
    assert not [q["sql"] for q in queries.captured_queries if "api_tokens" in q["sql"]]
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    # Even a good token from that address waits; from elsewhere it works.
    good = api_as(caseworker_alice)
    assert good.get("/api/queues/", REMOTE_ADDR=FLOODER).status_code == 429
    assert good.get("/api/queues/", REMOTE_ADDR="10.0.0.1").status_code == 200


def test_a_hundred_bad_token_requests_write_a_handful_of_audit_rows_and_count_all(demo_org):
    before = SecurityEvent.objects.count()
    client = bad_token_client()
    statuses = [client.get("/api/queues/").status_code for _ in range(100)]
    assert set(statuses) == {401, 429}
    assert SecurityEvent.objects.count() - before <= 2
    assert SecurityEvent.objects.filter(event_type="LOGIN_FAILURE", remote_addr=FLOODER).count() == 1
    tallies = AuthFailureTally.objects.filter(remote_addr=FLOODER)
    assert sum(t.failures for t in tallies) == statuses.count(401)
    assert sum(t.failures + t.throttled for t in tallies) == 100


class BrokenCache:
    """A cache whose server is down: every call fails."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("cache server unreachable")

        return fail


def test_a_cache_outage_lets_api_calls_through_instead_of_failing_them(api_as, caseworker_alice, monkeypatch, rates):
    rates(account="1/minute")
    monkeypatch.setattr(AccountRateThrottle, "cache", BrokenCache())
    monkeypatch.setattr(FailedTokenLimit, "cache", BrokenCache())
    client = api_as(caseworker_alice)
    assert [client.get("/api/queues/").status_code for _ in range(2)] == [200, 200]
    assert bad_token_client().get("/api/queues/").status_code == 401
