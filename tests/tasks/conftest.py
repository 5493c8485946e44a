"""Fixtures of the task tests: a real SMTP receiver for the emails jobs send."""

import email
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller

# Ports this test suite's receivers may take (the machine's other services keep out of it).
SMTP_PORTS = range(18200, 18300)


def free_port() -> int:
    for port in SMTP_PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {SMTP_PORTS}")


class Inbox:
    """aiosmtpd handler: keeps each delivered message, parsed, with its envelope recipients."""

    def __init__(self):
        self.messages = []
        self.port = None

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address):
        found = [message for recipients, message in self.messages if address in recipients]
        assert len(found) == 1, f"{len(found)} messages to {address}"
        return found[0]


@pytest.fixture
def smtp(settings):
    """A real SMTP server on 127.0.0.1 that Django's SMTP backend delivers to."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield inbox
    finally:
        controller.stop()
