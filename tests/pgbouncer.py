"""A real PgBouncer (the Debian package's binary) in transaction mode, started by the tests in front of a PostgreSQL
server: its configuration, log and Unix socket under a temporary folder, on a port of the caller's choosing. As
root it runs as the postgres OS user (PgBouncer refuses root)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from psycopg import sql

START_DEADLINE_SECONDS = 15


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(path, os.X_OK)), None
    )


def pgbouncer_version() -> tuple[int, ...]:
    """The installed PgBouncer's version, e.g. (1, 18, 0)."""
    output = subprocess.run([pgbouncer_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(part) for part in output.split()[1].split("."))


def pgbouncer_port() -> int:
    """A free port for a test's PgBouncer: from PGBOUNCER_TEST_PORTS ("6442-6449") when set, so that a machine
    shared with other runs can give each its own ports; else any free port."""
    first, _, last = os.environ.get("PGBOUNCER_TEST_PORTS", "").partition("-")
    if not first:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]
    for port in range(int(first), int(last or first) + 1):
        if not _accepts(port):
            return port
    raise RuntimeError(f"no free port in PGBOUNCER_TEST_PORTS={first}-{last}")


def url_through_pgbouncer(url: str, port: int) -> str:
    """`url` (postgresql://user:password@host:port/name?...) at a PgBouncer on 127.0.0.1:`port` instead."""
    parts = urlsplit(url)
    login = parts.netloc.rpartition("@")[0]
    query = urlencode([(key, value) for key, value in parse_qsl(parts.query) if key not in {"host", "port"}])
    return parts._replace(netloc=f"{login}@127.0.0.1:{port}", query=query).geturl()


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


class PgBouncer:
    """PgBouncer on 127.0.0.1:`port` passing every database name to `server_host`:`server_port`.

    `users` (name -> password, "" for none) may log in: PgBouncer trusts them and logs in to the server with the
    password given. `settings` add to or override the [pgbouncer] section (e.g. default_pool_size)."""

    def __init__(
        self,
        *,
        port: int,
        server_host: str,
        server_port: int | str,
        users: dict[str, str],
        settings: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.log = self.folder / "pgbouncer.log"
        self.as_postgres = os.geteuid() == 0
        (self.folder / "userlist.txt").write_text(
            "".join(f"{_quoted(user)} {_quoted(password)}\n" for user, password in users.items())
        )
        server = f"host={server_host} port={server_port}"
        config = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(port),
            "unix_socket_dir": str(self.folder),
            "auth_type": "trust",
            "auth_file": str(self.folder / "userlist.txt"),
            "pool_mode": "transaction",
            "default_pool_size": "40",
            "max_client_conn": "500",
            "server_idle_timeout": "20",
            "logfile": str(self.log),
            **(settings or {}),
        }
        (self.folder / "pgbouncer.ini").write_text(
            f"[databases]\n* = {server}\n\n[pgbouncer]\n"
            + "".join(f"{key} = {value}\n" for key, value in config.items())
        )
        if self.as_postgres:
            for path in (self.folder, *self.folder.iterdir()):
                shutil.chown(path, "postgres", "postgres")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError("PgBouncer is not installed: apt-get install -y pgbouncer")
        if _accepts(self.port):
            raise RuntimeError(f"port {self.port} is taken: PgBouncer cannot listen there")
        user = ["-u", "postgres"] if self.as_postgres else []
        self.process = subprocess.Popen(
            [binary, *user, str(self.folder / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while not _accepts(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PgBouncer did not start on port {self.port}:\n{self.log_text()}")
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        """Immediate shutdown (SIGTERM): every client and server connection is closed."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, user: str, database: str, password: str = "") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def pgbouncer_for_test_session() -> Iterator[PgBouncer]:
    """With DATABASE_PGBOUNCER=true, the test session's own PgBouncer, at DATABASE_URL's address, in front of the
    server DATABASE_MIGRATE_URL leads to (the owner creates and migrates the test database there, directly).

    The test database's login acts as DATABASE_SET_ROLE by its default role in that database, as an operator sets it
    up behind PgBouncer (core/pgbouncer.py); the test database is new, so it is set here, through the superuser.
    PgBouncer's log is left in the temporary folder as pgbouncer-tests-<port>.log."""
    from django.conf import settings
    from django.db import connection

    from tests.roles import admin_connect

    app, server = settings.DATABASES["default"], settings.MIGRATE_DATABASE
    if not server.get("HOST"):
        raise RuntimeError("DATABASE_PGBOUNCER=true: the tests need a host (or socket folder) in DATABASE_MIGRATE_URL")
    if (app.get("HOST"), app.get("PORT")) == (server.get("HOST"), server.get("PORT")):
        raise RuntimeError(
            "DATABASE_PGBOUNCER=true: the tests start PgBouncer at DATABASE_URL's address in front of the server "
            "DATABASE_MIGRATE_URL leads to; point DATABASE_MIGRATE_URL at the server itself"
        )
    if settings.DATABASE_SET_ROLE:
        with admin_connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET role = {}").format(
                    sql.Identifier(app["USER"]),
                    sql.Identifier(connection.settings_dict["NAME"]),
                    sql.Identifier(settings.DATABASE_SET_ROLE),
                )
            )
    bouncer = PgBouncer(
        port=int(app["PORT"]),
        server_host=server["HOST"],
        server_port=server.get("PORT") or 5432,
        users={app["USER"]: app.get("PASSWORD") or ""},
    )
    try:
        bouncer.start()
        yield bouncer
    finally:
        connection.close()
        bouncer.stop()
        # Kept for a look after the run: which connections PgBouncer refused or closed, and why.
        shutil.copyfile(bouncer.log, Path(tempfile.gettempdir()) / f"pgbouncer-tests-{bouncer.port}.log")
        bouncer.remove()
