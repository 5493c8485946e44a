"""/healthz answers while the process runs; /readyz only when the database and the broker answer."""
import pytest

from workflow_project.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthz_needs_no_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_database_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_names_the_broker_when_it_is_down(client):
    # A port nothing listens on: a real refused connection, not a mock.
    saved = {"broker_url": celery_app.conf.broker_url, "broker_transport_options": celery_app.conf.broker_transport_options}
    celery_app.conf.update(broker_url="redis://127.0.0.1:1/0", broker_transport_options={})
    try:
        response = client.get("/readyz")
    finally:
        celery_app.conf.update(**saved)
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert body["checks"]["database"] == "ok"


def test_pages_need_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
