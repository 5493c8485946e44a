"""HTTPS=true turns on HSTS, the redirect to HTTPS and secure cookies together; Django's deploy checks agree."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTTPS_CHECKS = ("security.W004", "security.W008", "security.W012", "security.W016")


def deploy_check(test_database_url, **env) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "DATABASE_URL": test_database_url,
            "DEBUG": "false",
            "SECRET_KEY": "a-long-random-secret-key-for-the-deploy-check-0123456789-abcdefghijkl",
            **env,
        },
    )
    return result.stdout + result.stderr


@pytest.mark.django_db
def test_without_https_the_deploy_check_names_each_missing_protection(test_database_url):
    report = deploy_check(test_database_url, HTTPS="false")

    assert all(check in report for check in HTTPS_CHECKS), report


@pytest.mark.django_db
def test_https_true_turns_on_hsts_redirect_and_secure_cookies(test_database_url):
    report = deploy_check(test_database_url, HTTPS="true", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")

    assert [check for check in HTTPS_CHECKS if check in report] == [], report


def test_behind_a_proxy_https_requests_are_not_redirected_and_get_hsts(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    plain = client.get("/healthz/".rstrip("/"))
    redirected = client.get("/accounts/login/")
    proxied = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")

    assert plain.status_code == 200  # load balancers probe over plain HTTP
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")
    assert proxied.status_code == 200 and proxied["Strict-Transport-Security"].startswith("max-age=31536000")
