"""Throwaway PostgreSQL clusters for tests that stop, restart or configure a server of their own: initdb on a free
port under a temporary folder, or a streaming standby of one (pg_basebackup -R); as root, initdb, pg_basebackup and
pg_ctl run as the postgres OS user (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.skip(f"PostgreSQL server binaries ({name}) are not installed")
    return found[-1]


class ThrowawayCluster:
    """A cluster whose superuser `postgres` connects without a password from this machine (unless `hba` says
    otherwise). `settings` go to postgresql.conf; `hba`, when given, replaces pg_hba.conf.

    With `standby_of`, a running cluster, it is instead a copy of that one taken by pg_basebackup -R: a hot standby
    that streams from it once started (initdb's pg_hba.conf lets this machine replicate without a password)."""

    def __init__(
        self,
        *,
        prefix: str = "cluster-",
        settings: dict[str, str] | None = None,
        hba: list[str] | None = None,
        standby_of: ThrowawayCluster | None = None,
    ) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self.data = self.folder / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        if standby_of is None:
            self.run(postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        else:
            self.run(
                postgres_bin("pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(standby_of.port), "-U", "postgres", "-D", str(self.data)),
                *("--write-recovery-conf", "--wal-method=stream", "--checkpoint=fast", "--no-sync"),
            )
        self.configure(settings or {})
        if hba is not None:
            (self.data / "pg_hba.conf").write_text("".join(f"{line}\n" for line in hba))
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/workflow"

    def configure(self, settings: dict[str, str]) -> None:
        """Settings for postgresql.conf, read at the next start."""
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())

    def private_file(self, name: str, content: bytes) -> Path:
        """A file only the server's OS user may read (what PostgreSQL demands of a server key)."""
        path = self.folder / name
        path.write_bytes(content)
        path.chmod(0o600)
        if self.as_postgres:
            shutil.chown(path, "postgres", "postgres")
        return path

    def run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self, listen: str = "127.0.0.1") -> None:
        self.run(
            postgres_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses={listen} -c fsync=off",
            "start",
        )

    def stop(self) -> None:
        self.run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)
