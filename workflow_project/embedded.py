"""Embedded defaults: a PostgreSQL from the pgserver package and a serverless Celery broker, under ./var/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import fasteners

EMBEDDED_DATABASE = "workflow"
RUNTIME_DIR_MODE = 0o700  # the XDG base directory specification's mode for a runtime directory


def var_dir(base_dir: Path) -> Path:
    path = Path(os.environ.get("WORKFLOW_VAR_DIR", base_dir / "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def runtime_dir(base_dir: Path) -> Path:
    """./var/run: process ids of what bin/run starts, and pgserver's runtime directory (its lock file)."""
    path = var_dir(base_dir) / "run"
    path.mkdir(mode=RUNTIME_DIR_MODE, exist_ok=True)
    path.chmod(RUNTIME_DIR_MODE)
    return path


def import_pgserver(base_dir: Path):
    """Import pgserver with a runtime directory of its own.

    pgserver asks platformdirs for the user's runtime directory when it is imported; without XDG_RUNTIME_DIR (a
    container, cron, an ssh session without a login manager) platformdirs warns on every command and falls back to
    a directory in /tmp shared by every project. ./var/run serves instead, set for this process and its children
    (bin/run's web server and worker) unless the environment names one.
    """
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir(base_dir))
    import pgserver

    return pgserver


def embedded_postgres_settings(base_dir: Path) -> dict:
    """Start (or reuse) the embedded PostgreSQL, make its roles and the `workflow` database, and return Django
    connection settings for it as its superuser (settings.py swaps in the role each connection logs in as).

    The server is left running when this process exits (cleanup_mode=None) so that the web
    server, the Celery worker and management commands share one database.
    """
    pgserver = import_pgserver(base_dir)

    from core.db_roles import roles_ensure

    data_dir = var_dir(base_dir) / "pgdata"
    # Several processes may start at once (web, worker, beat): one starts the server, the rest reuse it.
    with fasteners.InterProcessLock(str(var_dir(base_dir) / "pgserver.lock")):
        pgserver.get_server(data_dir, cleanup_mode=None)
        roles_ensure(f"host={data_dir} user=postgres dbname=postgres", database=EMBEDDED_DATABASE, owner_createdb=True)
    return {
        "NAME": EMBEDDED_DATABASE,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(data_dir),
        "PORT": "",
    }


def filesystem_broker(base_dir: Path) -> tuple[str, dict]:
    """A Celery broker that needs no server: kombu's filesystem transport under ./var/celery."""
    folder = var_dir(base_dir) / "celery" / "broker"
    folder.mkdir(parents=True, exist_ok=True)
    processed = var_dir(base_dir) / "celery" / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    control = var_dir(base_dir) / "celery" / "control"  # kombu's default is ./control, beside the code
    control.mkdir(parents=True, exist_ok=True)
    return "filesystem://", {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(control),
        "processed_folder": str(processed),
        "store_processed": False,
    }


def stop_embedded_postgres(base_dir: Path) -> int | None:
    """Stop the embedded PostgreSQL under ./var/pgdata if it runs. Returns the process id it had, else None."""
    data_dir = var_dir(base_dir) / "pgdata"
    pid = embedded_postgres_pid(data_dir)
    if pid is None:
        return None
    pgserver = import_pgserver(base_dir)
    user = "pgserver" if os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    return pid


def embedded_postgres_pid(data_dir: Path) -> int | None:
    """The postmaster's process id if one runs on `data_dir` (a crash leaves postmaster.pid behind)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it runs, as another user (pgserver's own when started by root)
    return pid


def main(argv: list[str]) -> int:
    """`python -m workflow_project.embedded stop` (bin/stop): stop the embedded PostgreSQL and say so."""
    if argv != ["stop"]:
        print("usage: python -m workflow_project.embedded stop", file=sys.stderr)
        return 2
    base_dir = Path(__file__).resolve().parent.parent
    data_dir = var_dir(base_dir) / "pgdata"
    if pid := stop_embedded_postgres(base_dir):
        print(f"Stopped the embedded PostgreSQL (pid {pid}, {data_dir}).")
    else:
        print(f"The embedded PostgreSQL ({data_dir}) is not running.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
