"""One request id (X-Request-ID) in the response, the error body, every log line of the request and the log lines of
the Celery jobs it queues (django-guid); JSON logs by a setting; Sentry when SENTRY_DSN is set."""

import gzip
import io
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django_guid import clear_guid, set_guid

from tests.project.test_celery_beat import Worker, wait_for

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def console_log():
    """What the root logger's console handler writes during the test."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


def test_an_error_body_and_its_header_carry_the_same_new_request_id(api_as, caseworker_alice):
    response = api_as(caseworker_alice).get("/api/workflow/tasks/999999999/")
    assert response.status_code == 404
    request_id = response["X-Request-ID"]
    assert uuid.UUID(request_id) and response.json()["request_id"] == request_id


def test_a_callers_uuid_is_kept_and_anything_else_replaced(api_as, caseworker_alice):
    client = api_as(caseworker_alice)
    given = uuid.uuid4().hex
    assert client.get("/api/workflow/tasks/", HTTP_X_REQUEST_ID=given)["X-Request-ID"] == given
    replaced = client.get("/api/workflow/tasks/", HTTP_X_REQUEST_ID="'; DROP TABLE x; --")["X-Request-ID"]
    assert replaced != given and uuid.UUID(replaced)


def test_every_log_line_of_a_request_names_its_id(client, console_log):
    response = client.get("/api/no-such-endpoint/")
    assert response.status_code == 404
    lines = [line for line in console_log.getvalue().splitlines() if "Not Found" in line]
    assert lines and all(f"[{response['X-Request-ID']}]" in line for line in lines)


def test_a_request_adds_no_log_line_of_its_own_id(api_as, caseworker_alice, console_log):
    """django-guid's INFO line about each request's id would be one line a request, saying nothing."""
    api_as(caseworker_alice).get("/api/workflow/tasks/")
    assert "django_guid" not in console_log.getvalue()


def test_json_logs_are_one_object_a_line_with_the_request_id(tmp_path):
    script = (
        "import logging, django; django.setup();"
        "from django_guid import set_guid; set_guid('abc123');"
        "logging.getLogger('workflow.test').warning('hello %s', 'there')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT,
        env={**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "workflow_project.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    mine = [r for r in records if r.get("name") == "workflow.test"]
    assert mine == [mine[0]] and mine[0]["message"] == "hello there" and mine[0]["request_id"] == "abc123"
    assert mine[0]["level"] == "WARNING"


def test_a_bad_log_format_stops_the_process_with_one_line():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT,
        env={**os.environ, "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "LOG_FORMAT must be plain or json, not 'xml'" in result.stderr


@pytest.mark.slow
def test_a_job_queued_by_a_request_logs_under_the_requests_id(committed_db, test_database_url):
    from workflow_project.celery import app

    worker = Worker(test_database_url)
    worker.start()
    request_id = uuid.uuid4().hex
    try:
        set_guid(request_id)
        try:
            result = app.send_task("workflow.refresh_dashboards")
        finally:
            clear_guid()
        assert wait_for(lambda: result.ready(), seconds=90), worker.stop()[-3000:]
    finally:
        output = worker.stop()
    # The job's own lines (from its start: the worker's "received" line comes before) carry the request's id.
    ran = [line for line in output.splitlines() if f"workflow.refresh_dashboards[{result.id}] succeeded" in line]
    assert ran and all(f"[{request_id}]" in line for line in ran), output[-3000:]


class SentryReceiver(BaseHTTPRequestHandler):
    envelopes: list[bytes] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":
            import brotli

            body = brotli.decompress(body)
        SentryReceiver.envelopes.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_with_sentry_dsn_an_unhandled_error_reaches_the_tracker_with_the_request_id():
    server = HTTPServer(("127.0.0.1", 0), SentryReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    SentryReceiver.envelopes = []
    script = (
        "import django, sentry_sdk; django.setup();"
        "from django_guid import set_guid; set_guid('feedface');"
        "\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n    sentry_sdk.capture_exception()\n"
        "sentry_sdk.flush(10)"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=PROJECT,
            env={
                **os.environ,
                "SENTRY_DSN": f"http://publickey@127.0.0.1:{server.server_port}/1",
                "DJANGO_SETTINGS_MODULE": "workflow_project.settings",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr[-2000:]
    events = [e for e in SentryReceiver.envelopes if b"ZeroDivisionError" in e]
    assert events and b'"request_id":"feedface"' in events[0]
