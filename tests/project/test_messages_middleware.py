"""Flash messages: built only when used, still stored across a redirect and shown once."""
from django.test import Client
from django.utils.functional import SimpleLazyObject, empty


def test_an_api_request_builds_no_message_storage(api_as, caseworker_alice):
    response = api_as(caseworker_alice).get("/api/queues/")
    assert response.status_code == 200
    messages = response.wsgi_request._messages
    assert isinstance(messages, SimpleLazyObject) and messages._wrapped is empty


def test_a_message_survives_the_redirect_and_is_shown_once(caseworker_alice):
    client = Client()
    client.force_login(caseworker_alice)
    redirected = client.post("/inbox/")
    assert redirected.status_code == 302
    assert "No task is waiting in your queues" in client.get(redirected["Location"]).content.decode()
    assert "No task is waiting in your queues" not in client.get("/inbox/").content.decode()
