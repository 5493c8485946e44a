"""Embedded defaults: a PostgreSQL from the pgserver package and a serverless Celery broker, under ./var/."""

from __future__ import annotations

import os
from pathlib import Path

import fasteners

EMBEDDED_DATABASE = "workflow"


def var_dir(base_dir: Path) -> Path:
    path = Path(os.environ.get("WORKFLOW_VAR_DIR", base_dir / "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedded_postgres_settings(base_dir: Path) -> dict:
    """Start (or reuse) the embedded PostgreSQL, make its roles and the `workflow` database, and return Django
    connection settings for it as its superuser (settings.py swaps in the role each connection logs in as).

    The server is left running when this process exits (cleanup_mode=None) so that the web
    server, the Celery worker and management commands share one database.
    """
    import pgserver

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


def stop_embedded_postgres(base_dir: Path) -> bool:
    """Stop the embedded PostgreSQL under ./var/pgdata if it runs. Returns whether one was stopped."""
    import pgserver

    data_dir = var_dir(base_dir) / "pgdata"
    if not (data_dir / "postmaster.pid").exists():
        return False
    user = "pgserver" if os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    return True
