"""Django database settings from a postgresql:// URL with one host or several, and the URL back from the settings.

dj_database_url reads a URL with one host. libpq also takes a list, `postgresql://user@h1:5432,h2:5433/db?
target_session_attrs=read-write`, and tries the hosts in turn until one is a read-write primary: how the application
finds whichever node of a pg_auto_failover (or Patroni) formation is primary now (deploy/failover/README.md).
Django hands HOST and PORT to psycopg unchanged and libpq reads comma-separated lists in both ("Specifying Multiple
Hosts" in libpq's connection documentation), so such a URL becomes HOST "h1,h2" and PORT "5432,5433"; everything
else (user, password, database, query options) is dj_database_url's reading of the URL with its first host.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def parse(url: str) -> dict:
    """A DATABASES entry for `url`; several hosts (comma-separated, each with its own port or none) are kept as
    libpq's lists."""
    parts = urlsplit(url)
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    if "," not in hostlist:
        return dj_database_url.parse(url)
    hosts, ports = zip(*(_host_and_port(item) for item in hostlist.split(",")), strict=True)
    first = hostlist.split(",", 1)[0]
    database = dj_database_url.parse(urlunsplit(parts._replace(netloc=f"{userinfo}{at}{first}")))
    database["HOST"] = ",".join(hosts)
    # libpq: one port for every host, or one per host (an empty one is the default port).
    database["PORT"] = ",".join(ports) if any(ports) else ""
    return database


def _host_and_port(item: str) -> tuple[str, str]:
    if item.startswith("["):  # an IPv6 address: [::1]:5432
        address, _, rest = item[1:].partition("]")
        host, port = address, rest.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    host = unquote(host)
    if not host:
        raise ImproperlyConfigured(f"a database URL lists an empty host in {item!r}: write host[:port] for each")
    if port and not port.isdigit():
        raise ImproperlyConfigured(f"a database URL gives the port {port!r} for {host}: a port is a number")
    return host, port


def hosts_netloc(host: str, port: str | int | None) -> str:
    """The host part of a URL (`h1:p1,h2:p2`) for Django's HOST and PORT, lists included (the inverse of parse)."""
    hosts = host.split(",")
    ports = str(port or "").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    if len(ports) != len(hosts):
        raise ImproperlyConfigured(f"the database settings give {len(hosts)} hosts but {len(ports)} ports")
    return ",".join(
        (f"[{name}]" if ":" in name else quote(name, safe="")) + (f":{number}" if number else "")
        for name, number in zip(hosts, ports, strict=True)
    )
