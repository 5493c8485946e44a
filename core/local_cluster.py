"""Throwaway PostgreSQL clusters on this machine: initdb on a free port under a temporary folder, started and stopped
with pg_ctl. The restore drill (manage.py restore_drill) and the tests that stop, restart or configure a server of
their own use them. As root, initdb, pg_ctl and pgBackRest run as the postgres OS user (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .backup import conf_quoted


class ServerBinaryMissing(RuntimeError):
    """A PostgreSQL server binary (initdb, pg_ctl, ...) is not installed."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise ServerBinaryMissing(f"PostgreSQL server binaries ({name}) are not installed")
    return found[-1]


def as_server_user(command: list[str]) -> list[str]:
    """The command, run as the postgres OS user when we are root (initdb, pg_ctl and pg_autoctl refuse root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def own(path: Path) -> None:
    """Hand a file or folder to the server's OS user (when we are root; otherwise it is ours already)."""
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


class LocalCluster:
    """A cluster whose superuser `postgres` connects without a password from this machine (unless `hba` says
    otherwise). `settings` go to postgresql.conf; `hba`, when given, replaces pg_hba.conf. With `initdb=False` the
    data folder is left empty for a restore to fill.

    With `standby_of`, a running cluster, it is instead a copy of that one taken by pg_basebackup -R: a hot standby
    that streams from it once started (initdb's pg_hba.conf lets this machine replicate without a password)."""

    def __init__(
        self,
        *,
        prefix: str = "cluster-",
        settings: dict[str, str] | None = None,
        hba: list[str] | None = None,
        folder: Path | None = None,
        initdb: bool = True,
        standby_of: LocalCluster | None = None,
    ) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
        self.data = self.folder / "data"
        self.port = free_port()
        self.own(self.folder)
        if standby_of is not None:
            self.run(
                postgres_bin("pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(standby_of.port), "-U", "postgres", "-D", str(self.data)),
                *("--write-recovery-conf", "--wal-method=stream", "--checkpoint=fast", "--no-sync"),
            )
            self.configure(settings or {})
            if hba is not None:
                (self.data / "pg_hba.conf").write_text("".join(f"{line}\n" for line in hba))
        elif initdb:
            self.run(postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
            self.configure(settings or {})
            if hba is not None:
                (self.data / "pg_hba.conf").write_text("".join(f"{line}\n" for line in hba))
        else:
            self.data.mkdir(mode=0o700)
            self.own(self.data)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/workflow"

    def own(self, path: Path) -> None:
        own(path)

    def configure(self, settings: dict[str, str]) -> None:
        """Settings for postgresql.conf, read at the next start."""
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = '{conf_quoted(value)}'\n" for name, value in settings.items())

    def private_file(self, name: str, content: bytes) -> Path:
        """A file only the server's OS user may read (what PostgreSQL demands of a server key)."""
        path = self.folder / name
        path.write_bytes(content)
        path.chmod(0o600)
        self.own(path)
        return path

    def run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a command as the server's OS user; CalledProcessError (with its output) when it fails."""
        return subprocess.run(
            as_server_user(list(command)), check=True, capture_output=True, text=True, timeout=timeout
        )

    def start(self, listen: str = "127.0.0.1", *, options: str = "") -> None:
        self.run(
            postgres_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "300",
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses={listen} -c fsync=off {options}".strip(),
            "start",
            timeout=330,
        )

    def stop(self) -> None:
        self.run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def log(self) -> str:
        try:
            return (self.folder / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)
