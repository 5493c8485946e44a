"""/metrics: Prometheus text format, figures from the database, and who may scrape it."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tasks.console import metrics as figures
from tasks.services import task_claim
from tasks.sla.maintenance import refresh_dashboards

pytestmark = pytest.mark.django_db

METRICS_URL = "/metrics"


@pytest.fixture(autouse=True)
def fresh_counts():
    figures.forget_settled_counts()
    yield
    figures.forget_settled_counts()


def samples(response) -> dict:
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_from_localhost_are_prometheus_text_with_queue_gauges_and_event_counters(
    client, caseworker_alice, make_task
):
    make_task("intake", "One")
    task_claim(user=caseworker_alice, task_id=make_task("intake", "Two").pk)
    refresh_dashboards()

    response = client.get(METRICS_URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(response)
    assert found[("workflow_queue_open_tasks", (("queue", "intake"),))] == 1
    assert found[("workflow_queue_claimed_tasks", (("queue", "intake"),))] == 1
    assert found[("workflow_queue_load_ratio", (("queue", "intake"),))] == pytest.approx(1 / 200)
    assert found[("workflow_task_claims_total", ())] == 1
    assert found[("workflow_task_events_total", (("event_type", "created"),))] == 2
    assert ("workflow_dashboard_refreshed_timestamp_seconds", ()) in found


def test_metrics_count_events_settled_earlier_and_new_ones_once(client, make_task):
    from django.db import connection

    from core.db_roles import maintenance_role

    make_task("intake", "Old")
    with maintenance_role(), connection.cursor() as cursor:  # history is append-only: backdate it as maintenance
        cursor.execute("UPDATE flowable.task_history SET created_at = now() - interval '1 hour'")
    client.get(METRICS_URL)  # remembers the settled event
    make_task("intake", "New")

    found = samples(client.get(METRICS_URL))

    assert found[("workflow_task_events_total", (("event_type", "created"),))] == 2


def test_metrics_include_the_request_latency_histogram(client):
    client.get("/healthz")

    body = client.get(METRICS_URL).content.decode()

    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="healthz",status_class="2xx"}' in body


def test_metrics_from_another_network_are_not_found(client):
    response = client.get(METRICS_URL, REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 404


def test_metrics_with_the_token_are_served_to_any_network(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"

    response = client.get(METRICS_URL, REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-token")

    assert response.status_code == 200


def test_metrics_with_a_wrong_token_are_not_found(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"

    response = client.get(METRICS_URL, REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer guess")

    assert response.status_code == 404


def test_metrics_follow_the_allowed_networks_setting(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]

    assert client.get(METRICS_URL, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get(METRICS_URL).status_code == 404
