"""DATABASE_URL with several hosts (core/database_url.py): libpq's host and port lists reach psycopg through Django,
so the application connects to whichever listed server is the read-write primary."""

import socket

import dj_database_url
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection
from django.db.backends.postgresql.base import DatabaseWrapper

from core.database_url import hosts_netloc, parse
from core.db_roles import database_url

FORMATION_URL = (
    "postgresql://workflow_app:s%40cret@node-a.example:5432,node-b.example:5433/workflow"
    "?target_session_attrs=read-write&connect_timeout=5"
)


def test_a_url_with_one_host_reads_as_dj_database_url_reads_it():
    url = "postgresql://workflow_app:pw@db.example:6432/workflow?sslmode=verify-full"

    assert parse(url) == dj_database_url.parse(url)


def test_a_url_with_several_hosts_gives_libpq_lists_of_hosts_and_ports():
    database = parse(FORMATION_URL)

    assert database["HOST"] == "node-a.example,node-b.example"
    assert database["PORT"] == "5432,5433"
    assert (database["USER"], database["PASSWORD"], database["NAME"]) == ("workflow_app", "s@cret", "workflow")
    assert database["OPTIONS"] == {"target_session_attrs": "read-write", "connect_timeout": 5}


def test_hosts_without_ports_take_the_default_port():
    assert parse("postgresql://u@a,b/db")["PORT"] == ""
    assert parse("postgresql://u@a:5433,b/db")["PORT"] == "5433,"


def test_ipv6_hosts_are_read_inside_their_brackets():
    database = parse("postgresql://u@[::1]:5432,[fd00::2]:5433/db")

    assert (database["HOST"], database["PORT"]) == ("::1,fd00::2", "5432,5433")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@a:5432,,b:5432/db", "empty host"),
        ("postgresql://u@a:5432,b:x/db", "port 'x'"),
    ],
)
def test_a_malformed_host_list_is_refused_with_a_clear_error(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        parse(url)


def test_the_url_made_back_from_the_settings_lists_every_host_with_its_port():
    """create_database_roles --print-env writes the roles' URLs from the settings: they keep the whole list."""
    assert database_url(parse(FORMATION_URL)) == FORMATION_URL
    assert hosts_netloc("::1,b", "5432") == "[::1]:5432,b:5432"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wrapper_for(**changes) -> DatabaseWrapper:
    """A Django connection with the test database's settings, hosts and options changed."""
    settings_dict = {**connection.settings_dict, "OPTIONS": dict(connection.settings_dict["OPTIONS"])}
    settings_dict["OPTIONS"].update(changes.pop("OPTIONS", {}))
    settings_dict.update(changes)
    return DatabaseWrapper(settings_dict)  # alias "default": the connection_created receivers look it up


@pytest.mark.django_db
def test_django_connects_to_the_next_listed_host_when_the_first_is_down():
    port = connection.settings_dict["PORT"] or "5432"
    host = connection.settings_dict["HOST"]
    listed = wrapper_for(
        HOST=f"{host},{host}",
        PORT=f"{closed_port()},{port}",
        OPTIONS={"target_session_attrs": "read-write"},
    )
    try:
        with listed.cursor() as cursor:
            cursor.execute("SELECT inet_server_port()")
            assert str(cursor.fetchone()[0]) == str(port)
    finally:
        listed.close()


@pytest.mark.django_db
def test_target_session_attrs_reaches_libpq_which_refuses_a_server_of_the_wrong_kind():
    """The shared test server is a primary: asked for a standby, libpq refuses it (and would try the next host)."""
    listed = wrapper_for(OPTIONS={"target_session_attrs": "standby"})
    try:
        with pytest.raises(OperationalError, match="server is not in hot standby mode"):
            listed.ensure_connection()
    finally:
        listed.close()


def test_a_url_made_from_settings_carries_libpq_options_only():
    from core.db_roles import database_url

    url = database_url(
        {
            "NAME": "workflow",
            "USER": "workflow_app",
            "HOST": "127.0.0.1",
            "PORT": 5432,
            "OPTIONS": {
                "connect_timeout": 2,
                "sslmode": "verify-full",
                "prepare_threshold": 5,
                "pool": {"max_size": 4},
            },
        }
    )
    assert url == "postgresql://workflow_app@127.0.0.1:5432/workflow?connect_timeout=2&sslmode=verify-full"
