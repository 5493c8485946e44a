"""What every benchmark script needs: its own database, and Django set up against it."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/workflow_bench"


def ensure_database(database_url: str) -> None:
    """Create the benchmark's database if it does not exist yet."""
    import psycopg
    from psycopg import conninfo, sql

    name = conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(conninfo.make_conninfo(database_url, dbname="postgres"), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def django_setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_project.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    # A benchmark is one account calling as fast as it can: the API's per-account rate limit would cut it short.
    os.environ.setdefault("API_THROTTLE_USER_RATE", "off")
    # Loading a million rows is one INSERT ... SELECT generate_series, longer than a request's statement may run.
    os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT", "0")
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()


def as_a_worker_serves() -> None:
    """Put this process in the state a gunicorn worker serves from (workflow_project/gunicorn_config.py:
    post_worker_init): every view imported, and what was loaded so far (Django, the apps, a benchmark's own setup)
    hidden from the cyclic collector. Call it once the benchmark is set up, before timing: without it every full
    collection walks the whole process again, a tail production does not have."""
    from workflow_project.gunicorn_config import post_worker_init

    post_worker_init(worker=None)


def wsgi_request(
    application, token: str, path: str, query: str = "", *, method: str = "GET", headers: dict | None = None
) -> tuple[int, bytes]:
    """Send a bodiless `method` request for `path` through the WSGI handler in-process with an API token (or none,
    when `token` is empty; `headers` adds or replaces WSGI environ entries, a session cookie say): the server's
    whole work, no network."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "HTTP_ACCEPT": "application/json",
        "CONTENT_LENGTH": "0",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
        **(headers or {}),
    }
    if not token:
        del environ["HTTP_AUTHORIZATION"]
    statuses = []
    body = b"".join(application(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    return int(statuses[0].split()[0]), body


def wsgi_get(application, token: str, path: str, query: str = "") -> tuple[int, bytes]:
    """GET `path` through the WSGI handler in-process with an API token."""
    return wsgi_request(application, token, path, query)


def timed_ms(function, repeat: int, warm_ups: int = 2) -> list[float]:
    """Milliseconds of `repeat` calls of `function` after `warm_ups` untimed ones, sorted."""
    for _ in range(warm_ups):
        function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000.0)
    return sorted(samples)
