"""Flash messages: stored across a redirect and shown once."""

from django.test import Client


def test_a_message_survives_the_redirect_and_is_shown_once(caseworker_alice):
    client = Client()
    client.force_login(caseworker_alice)
    redirected = client.post("/inbox/")
    assert redirected.status_code == 302
    assert "No task is waiting in your queues" in client.get(redirected["Location"]).content.decode()
    assert "No task is waiting in your queues" not in client.get("/inbox/").content.decode()
