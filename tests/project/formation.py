"""A pg_auto_failover formation for the failover drill: a monitor and two PostgreSQL nodes on free ports under a
temporary folder, each `pg_autoctl run` a process of ours (as the postgres OS user when we are root), with
synchronous replication (pg_auto_failover's default for a standby in the replication quorum) and failover timings
short enough for a test. The Debian packages postgresql-15-auto-failover and pg-auto-failover-cli provide it; .ci/run
installs them, and a test skips where they are missing.

deploy/failover/README.md sets up the same topology for production, with the default timings.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from core.local_cluster import as_server_user, free_port, own
from tests.project.clusters import postgres_bin

DATABASE = "workflow"
HOST = "127.0.0.1"

# The monitor decides when a primary is lost (pg_autoctl(5), "pg_auto_failover Monitor"). Shortened for the drill; the
# comments give the defaults, which production keeps (deploy/failover/README.md).
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "1000",  # 5000 ms between health checks
    "pgautofailover.health_check_timeout": "2000",  # 5000 ms to connect
    "pgautofailover.health_check_max_retries": "2",  # 2
    "pgautofailover.health_check_retry_delay": "500",  # 2000 ms
    "pgautofailover.node_considered_unhealthy_timeout": "4000",  # 20000 ms without a report from the node's keeper
    "pgautofailover.primary_demote_timeout": "6000",  # 30000 ms; longer than network_partition_timeout below
}
# A primary's keeper that reaches neither the monitor nor the standby this long stops its server (no split brain):
# it must be shorter than primary_demote_timeout, the monitor's wait before it promotes the standby.
KEEPER_SETTINGS = {"timeout.network_partition_timeout": "5"}  # 20 s
# The drill kills processes, not the machine: what a server has written survives in the operating system's cache.
NODE_SETTINGS = {"fsync": "off"}

STATE_LIMIT_SECONDS = 180  # a deadline on each wait for the formation, not a measure of anything


class FormationToolsMissing(RuntimeError):
    """pg_autoctl (pg-auto-failover-cli, postgresql-15-auto-failover) is not installed."""


@dataclass
class Node:
    name: str
    port: int
    pgdata: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{DATABASE}"


class Formation:
    """A monitor and the data nodes node1 and node2; node1 starts as the primary."""

    def __init__(self, *, prefix: str = "formation-") -> None:
        self.pg_autoctl_path = shutil.which("pg_autoctl")
        if self.pg_autoctl_path is None:
            raise FormationToolsMissing(
                "pg_autoctl is not installed (apt-get install postgresql-15-auto-failover pg-auto-failover-cli)"
            )
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        own(self.folder)
        self.monitor = Node("monitor", free_port(), self.folder / "monitor")
        self.nodes = {name: Node(name, free_port(), self.folder / name) for name in ("node1", "node2")}

    @property
    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@{HOST}:{self.monitor.port}/pg_auto_failover?sslmode=disable"

    def url(self) -> str:
        """The application's DATABASE_URL: every node, and libpq connects to whichever is the read-write primary."""
        hosts = ",".join(f"{HOST}:{node.port}" for node in self.nodes.values())
        return f"postgresql://postgres@{hosts}/{DATABASE}?target_session_attrs=read-write&connect_timeout=2"

    def pg_autoctl(self, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*arguments), check=True, capture_output=True, text=True, timeout=timeout, cwd=self.folder
        )

    def command(self, *arguments: str) -> list[str]:
        # pg_autoctl keeps its configuration and state under the XDG folders: ours, not the postgres user's home.
        places = {
            "XDG_CONFIG_HOME": self.folder / "config",
            "XDG_DATA_HOME": self.folder / "share",
            "XDG_RUNTIME_DIR": self.folder / "run",
        }
        return as_server_user(
            ["env", *(f"{name}={path}" for name, path in places.items()), self.pg_autoctl_path, *arguments]
        )

    def create(self) -> None:
        """Create and run the monitor, then node1 (the primary), then node2 (its standby, by pg_basebackup)."""
        pg_ctl = postgres_bin("pg_ctl")
        (self.folder / "run").mkdir(mode=0o700)
        own(self.folder / "run")
        self.pg_autoctl(
            *("create", "monitor", "--pgdata", str(self.monitor.pgdata), "--pgport", str(self.monitor.port)),
            *("--hostname", HOST, "--auth", "trust", "--no-ssl", "--pgctl", pg_ctl),
        )
        self.pg_autoctl("config", "set", "--pgdata", str(self.monitor.pgdata), "postgresql.listen_addresses", HOST)
        self.configure(self.monitor, MONITOR_SETTINGS)
        self.start(self.monitor)
        for node in self.nodes.values():
            self.pg_autoctl(
                *("create", "postgres", "--pgdata", str(node.pgdata), "--pgport", str(node.port), "--pghost", HOST),
                *("--listen", HOST, "--hostname", HOST, "--name", node.name, "--auth", "trust", "--no-ssl"),
                *("--monitor", self.monitor_uri, "--dbname", DATABASE, "--username", "postgres", "--pgctl", pg_ctl),
            )
            for setting, value in KEEPER_SETTINGS.items():
                self.pg_autoctl("config", "set", "--pgdata", str(node.pgdata), setting, value)
            if node.name == "node1":  # node2 is a copy of node1, postgresql.conf included
                self.configure(node, NODE_SETTINGS)
            self.start(node)
        self.wait_for({"node1": "primary", "node2": "secondary"})

    def configure(self, node: Node, settings: dict[str, str]) -> None:
        """Settings appended to postgresql.conf, after pg_auto_failover's include: they win at the next start."""
        with open(node.pgdata / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())

    def start(self, node: Node) -> None:
        """`pg_autoctl run` for the node, in a process group of its own (its keeper, its postgres)."""
        with open(self.folder / f"{node.name}.log", "ab") as log:
            node.process = subprocess.Popen(
                self.command("run", "--pgdata", str(node.pgdata)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.folder,
            )

    def states(self) -> dict[str, str]:
        """node name -> the state the monitor last heard the node report ("" while it is being assigned another)."""
        shown = json.loads(self.pg_autoctl("show", "state", "--monitor", self.monitor_uri, "--json", timeout=30).stdout)
        return {
            entry["nodename"]: entry["current_group_state"]
            if entry["current_group_state"] == entry["assigned_group_state"]
            else ""
            for entry in shown
        }

    def wait_for(self, wanted: dict[str, str | tuple[str, ...]]) -> None:
        """Poll the monitor until each named node is in the wanted state (or one of them), under a deadline."""
        deadline = time.monotonic() + STATE_LIMIT_SECONDS
        while True:
            states = self.states()
            if all(states.get(name) in ((want,) if isinstance(want, str) else want) for name, want in wanted.items()):
                return
            assert time.monotonic() < deadline, f"the formation never reached {wanted}: {states}\n{self.logs()}"
            time.sleep(0.2)

    def kill(self, node: Node) -> None:
        """Lose the node as a crashed machine is lost: its keeper and its postgres SIGKILLed at once, nothing left
        to restart it. The postmaster's sessions end when they notice it is gone."""
        postmaster = int((node.pgdata / "postmaster.pid").read_text().split()[0])
        os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=30)
        node.process = None
        deadline = time.monotonic() + STATE_LIMIT_SECONDS
        while process_alive(postmaster):
            assert time.monotonic() < deadline, f"postgres {postmaster} of {node.name} outlived SIGKILL"
            time.sleep(0.05)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n" + path.read_text(errors="replace")[-4000:]
            for path in sorted(self.folder.glob("*.log"))
        )

    def remove(self) -> None:
        """Stop every keeper we started (its postgres with it), nodes before the monitor, and delete the folder."""
        for node in [*self.nodes.values(), self.monitor]:
            if node.process is None:
                continue
            try:
                self.pg_autoctl("stop", "--pgdata", str(node.pgdata), "--fast", timeout=60)
                node.process.wait(timeout=60)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait(timeout=30)
                subprocess.run(
                    as_server_user([postgres_bin("pg_ctl"), "-D", str(node.pgdata), "-m", "immediate", "stop"]),
                    capture_output=True,
                )
            node.process = None
        shutil.rmtree(self.folder, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether the process runs (a zombie, killed but not yet reaped by its new parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def synchronous_standbys(url: str) -> tuple[str, list[str]]:
    """The primary's synchronous_standby_names, and the sync_state of each standby streaming from it."""
    with psycopg.connect(url) as connection:
        names = connection.execute("SHOW synchronous_standby_names").fetchone()[0]
        states = [row[0] for row in connection.execute("SELECT sync_state FROM pg_stat_replication")]
    return names, states
