"""DATABASE_URL with sslmode=verify-full: against a PostgreSQL served with TLS by a CA this test makes, the settings
connect when the CA and the host name match, and every surface of the application says clearly when they do not.

Two throwaway clusters serve TLS with certificates of the test's own CA: one for localhost (and 127.0.0.1, ::1),
one for another host name. Plain TCP is refused by both (hostssl only); one role logs in by client certificate.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import pytest
from django.db import OperationalError, connection
from django.db.utils import ConnectionHandler
from django.test import Client

from core.database import connection_facts, connection_failure_reason
from entitlements.models import User
from tests.project.certificates import CertificateAuthority, Issued
from tests.project.clusters import ThrowawayCluster
from workflow_project.settings import database_settings

pytestmark = pytest.mark.slow  # starts two PostgreSQL servers

ROOT = Path(__file__).resolve().parents[2]
CERT_USER = "tls_cert_user"  # logs in with a client certificate only
OTHER_HOST = "db.elsewhere.test"

HBA = [
    "local all all trust",
    f"hostssl all {CERT_USER} 127.0.0.1/32 cert",
    f"hostssl all {CERT_USER} ::1/128 cert",
    "hostssl all all 127.0.0.1/32 trust",
    "hostssl all all ::1/128 trust",
]


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    other_ca_file: Path  # a CA that signed none of the servers' certificates
    client_certificate: Path
    client_key: Path


@dataclass(frozen=True)
class TlsServer:
    cluster: ThrowawayCluster

    def url(self, *, user: str = "postgres", host: str = "localhost", **params: str | Path) -> str:
        query = urlencode({"sslmode": "verify-full", **{name: str(value) for name, value in params.items()}})
        return f"postgresql://{user}@{host}:{self.cluster.port}/postgres?{query}"


@pytest.fixture(scope="module")
def certificate_authority() -> CertificateAuthority:
    return CertificateAuthority("Workflow test CA")


@pytest.fixture(scope="module")
def pki(certificate_authority, tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")

    def write(name: str, content: bytes) -> Path:
        path = folder / name
        path.write_bytes(content)
        path.chmod(0o600)  # libpq refuses a client key that others may read
        return path

    client = certificate_authority.client(CERT_USER)
    return Pki(
        ca_file=write("ca.crt", certificate_authority.certificate),
        other_ca_file=write("other-ca.crt", CertificateAuthority("Some other CA").certificate),
        client_certificate=write("client.crt", client.certificate),
        client_key=write("client.key", client.key),
    )


def tls_server(certificate_authority: CertificateAuthority, issued: Issued):
    cluster = ThrowawayCluster(prefix="tls-", hba=HBA)
    try:
        cluster.configure(
            {
                "ssl": "on",
                "ssl_cert_file": str(cluster.private_file("server.crt", issued.certificate)),
                "ssl_key_file": str(cluster.private_file("server.key", issued.key)),
                "ssl_ca_file": str(cluster.private_file("ca.crt", certificate_authority.certificate)),
            }
        )
        cluster.start(listen="localhost")
        yield TlsServer(cluster)
    finally:
        cluster.remove()


@pytest.fixture(scope="module")
def verified_server(certificate_authority, pki):
    """Its certificate names localhost, 127.0.0.1 and ::1."""
    issued = certificate_authority.server("localhost", dns=("localhost",), ips=("127.0.0.1", "::1"))
    for server in tls_server(certificate_authority, issued):
        with psycopg.connect(server.url(sslrootcert=pki.ca_file), autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {CERT_USER} LOGIN")
        yield server


@pytest.fixture(scope="module")
def mismatched_server(certificate_authority):
    """Signed by the same CA, but its certificate names another host."""
    yield from tls_server(certificate_authority, certificate_authority.server(OTHER_HOST, dns=(OTHER_HOST,)))


@pytest.fixture
def connect_with_settings(django_db_blocker):
    """A Django connection made from the settings the application derives from a URL (database_settings)."""
    opened = []

    def connect(url: str):
        database = ConnectionHandler({"default": database_settings(url)})["default"]
        opened.append(database)
        return database

    with django_db_blocker.unblock():
        yield connect
        for database in opened:
            database.close()


def refusal(database) -> str:
    with pytest.raises(OperationalError) as refused:
        database.ensure_connection()
    return connection_failure_reason(refused.value)


def test_the_url_passes_sslmode_and_the_certificate_files_to_the_driver(pki):
    options = database_settings(
        f"postgresql://app@db:5432/workflow?sslmode=verify-full&sslrootcert={pki.ca_file}"
        f"&sslcert={pki.client_certificate}&sslkey={pki.client_key}"
    )["OPTIONS"]

    assert options["sslmode"] == "verify-full"
    assert (options["sslrootcert"], options["sslcert"], options["sslkey"]) == tuple(
        str(path) for path in (pki.ca_file, pki.client_certificate, pki.client_key)
    )


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_verify_full_connects_when_the_ca_and_the_host_name_match(verified_server, pki, connect_with_settings, host):
    database = connect_with_settings(verified_server.url(host=host, sslrootcert=pki.ca_file))

    facts = connection_facts(database)

    assert re.fullmatch(r"TLSv1\.[23] \(sslmode=verify-full\)", facts.tls)
    assert facts.user == "postgres"


def test_verify_full_refuses_a_server_whose_certificate_names_another_host(
    mismatched_server, pki, connect_with_settings
):
    # The same server passes when only the CA is checked: the host name is what verify-full refuses.
    assert connection_facts(connect_with_settings(mismatched_server.url(sslmode="verify-ca", sslrootcert=pki.ca_file)))

    reason = refusal(connect_with_settings(mismatched_server.url(sslrootcert=pki.ca_file)))

    assert reason.startswith("TLS: the server's certificate is not for the host name in DATABASE_URL")
    assert f'"{OTHER_HOST}"' in reason and '"localhost"' in reason
    assert "\n" not in reason


def test_verify_full_with_the_wrong_ca_is_refused_clearly(verified_server, pki, connect_with_settings):
    reason = refusal(connect_with_settings(verified_server.url(sslrootcert=pki.other_ca_file)))

    assert reason.startswith("TLS: the server's certificate is not signed by a CA in sslrootcert")
    assert "\n" not in reason


def test_a_missing_ca_file_is_named(verified_server, tmp_path, connect_with_settings):
    missing = tmp_path / "no-such-ca.crt"

    reason = refusal(connect_with_settings(verified_server.url(sslrootcert=missing)))

    assert reason.startswith("TLS: the CA file named by sslrootcert cannot be used")
    assert str(missing) in reason


def test_a_client_certificate_in_the_url_logs_in_as_its_user(verified_server, pki, connect_with_settings):
    url = verified_server.url(
        user=CERT_USER, sslrootcert=pki.ca_file, sslcert=pki.client_certificate, sslkey=pki.client_key
    )

    assert connection_facts(connect_with_settings(url)).user == CERT_USER


def test_without_the_client_certificate_the_server_refusal_is_named(verified_server, pki, connect_with_settings):
    reason = refusal(connect_with_settings(verified_server.url(user=CERT_USER, sslrootcert=pki.ca_file)))

    assert reason.startswith("TLS: the server requires a client certificate (sslcert and sslkey)")


@pytest.fixture
def application_database(committed_db):
    """Points the application's own connection at another URL's settings until the test ends."""
    settings_dict = connection.settings_dict
    keys = ("HOST", "PORT", "NAME", "USER", "PASSWORD", "OPTIONS")
    saved = {key: settings_dict[key] for key in keys}

    def point_at(url: str) -> None:
        connection.close()
        settings_dict.update({key: database_settings(url)[key] for key in keys})

    yield point_at
    connection.close()
    settings_dict.update(saved)


@pytest.fixture(params=["another host name", "the wrong CA"])
def unverifiable_url(request, verified_server, mismatched_server, pki):
    if request.param == "another host name":
        return mismatched_server.url(sslrootcert=pki.ca_file), "is not for the host name"
    return verified_server.url(sslrootcert=pki.other_ca_file), "is not signed by a CA in sslrootcert"


def test_readyz_is_503_naming_the_tls_problem(application_database, unverifiable_url):
    url, problem = unverifiable_url
    application_database(url)

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert "database" in response.json()["down"]
    reason = response.json()["checks"]["database"]
    assert reason.startswith("TLS: ") and problem in reason


def test_an_api_call_to_a_database_whose_certificate_does_not_verify_is_a_503(
    application_database, mismatched_server, pki
):
    from entitlements.services import api_token_create

    token = api_token_create(user=User.objects.get(username="alice")).key
    application_database(mismatched_server.url(sslrootcert=pki.ca_file))

    response = Client(raise_request_exception=False).get("/api/workflow/tasks/", HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert int(response["Retry-After"]) > 0


def check_database(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check_database"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # The test's own servers have none of our roles: no acting as one.
        env={**{k: v for k, v in os.environ.items() if k != "DATABASE_SET_ROLE"}, "DATABASE_URL": url},
        timeout=120,
    )


def test_check_database_exits_1_with_one_line_naming_the_tls_problem(mismatched_server, pki):
    result = check_database(mismatched_server.url(sslrootcert=pki.ca_file))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "CommandError: cannot connect to the database: TLS: the server's certificate is not for the host name"
    )


def test_check_database_says_the_connection_is_verified_tls(verified_server, pki):
    result = check_database(verified_server.url(sslrootcert=pki.ca_file))

    assert result.returncode == 0, result.stderr
    assert re.search(r"TLS: TLSv1\.[23] \(sslmode=verify-full\)", result.stdout)
