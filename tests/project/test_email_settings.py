"""Email is configured from the environment: EMAIL_URL, the plain EMAIL_* variables over it, the console otherwise."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMAIL_VARIABLES = (
    "EMAIL_URL",
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "DEFAULT_FROM_EMAIL",
)
SHOW = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in (
    "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS",
    "EMAIL_USE_SSL", "DEFAULT_FROM_EMAIL")}))
"""


def email_settings(**env) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in EMAIL_VARIABLES}
    result = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, "DJANGO_SETTINGS_MODULE": "workflow_project.settings", **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_email_settings_mail_goes_to_the_console():
    assert email_settings()["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_email_url_configures_smtp_with_starttls_and_credentials():
    found = email_settings(EMAIL_URL="smtp://mailer:s3cret@mail.example.org:587/?tls=True")

    assert found["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (found["EMAIL_HOST"], found["EMAIL_PORT"]) == ("mail.example.org", 587)
    assert (found["EMAIL_HOST_USER"], found["EMAIL_HOST_PASSWORD"]) == ("mailer", "s3cret")
    assert found["EMAIL_USE_TLS"] is True and found["EMAIL_USE_SSL"] is False


def test_plain_variables_win_over_the_parts_of_email_url():
    found = email_settings(
        EMAIL_URL="smtp://mailer:s3cret@mail.example.org:587/?tls=True",
        EMAIL_PORT="2525",
        EMAIL_USE_TLS="false",
        DEFAULT_FROM_EMAIL="cases@example.org",
    )

    assert (found["EMAIL_HOST"], found["EMAIL_PORT"], found["EMAIL_USE_TLS"]) == ("mail.example.org", 2525, False)
    assert found["DEFAULT_FROM_EMAIL"] == "cases@example.org"


def test_email_host_alone_selects_smtp():
    found = email_settings(EMAIL_HOST="relay.internal")

    assert found["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (found["EMAIL_HOST"], found["EMAIL_PORT"]) == ("relay.internal", 25)
