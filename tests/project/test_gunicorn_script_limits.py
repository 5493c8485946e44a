"""A real gunicorn keeps answering while a request runs a model script that loops forever; that request gets 409."""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from entitlements.models import User
from tasks.bpmn.workflows import definition_deploy
from tests.project.test_gunicorn_config import PROJECT, free_port
from tests.tasks.engine.documents import bpmn_document, linear_process, script_task, user_task

# Generous: only there so that a regression fails instead of hanging the suite.
HANG_GUARD_SECONDS = 60


def request(port: int, method: str, path: str, *, token: str | None = None, body: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD_SECONDS)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def gunicorn_port(committed_db, test_database_url):
    """gunicorn with one gthread worker of two threads, as production runs it, over the committed test data."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "workflow_project.wsgi",
            "-c",
            "python:workflow_project.gunicorn_config",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "2",
            "--worker-class",
            "gthread",
        ],
        cwd=PROJECT,
        env={**os.environ, "DATABASE_URL": test_database_url},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while True:
            try:
                if request(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz"
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_looping_script_is_stopped_with_409_while_the_server_answers_other_requests(gunicorn_port):
    from entitlements.services import api_token_create

    supervisor = User.objects.get(username="supervisor")
    model = bpmn_document(
        linear_process(script_task("spin", "while True: pass"), user_task("review"), node_ids=["spin", "review"])
    )
    definition_deploy(user=supervisor, bpmn_xml=model)
    token = api_token_create(user=supervisor).key
    looping = {}

    def start_the_looping_process():
        looping["answer"] = request(
            gunicorn_port,
            "POST",
            "/api/workflow/processes/",
            token=token,
            body={"process_key": "fixture", "business_key": "LOOP-1"},
        )

    thread = threading.Thread(target=start_the_looping_process, daemon=True)
    thread.start()
    answered_meanwhile = []
    # While the looping request is in the server, the other thread answers probes and an authenticated read.
    while thread.is_alive() and len(answered_meanwhile) < 200:
        answered_meanwhile.append(request(gunicorn_port, "GET", "/healthz")[0])
        answered_meanwhile.append(request(gunicorn_port, "GET", "/api/workflow/definitions/", token=token)[0])
    thread.join(timeout=HANG_GUARD_SECONDS)

    assert not thread.is_alive(), "the looping request was not stopped"
    status, body = looping["answer"]
    assert status == 409, body
    assert json.loads(body)["code"] == "script_limit_exceeded"
    assert "spin" in json.loads(body)["detail"]
    assert answered_meanwhile and set(answered_meanwhile) == {200}
    # Afterwards the server is as responsive as before.
    assert request(gunicorn_port, "GET", "/api/workflow/definitions/", token=token)[0] == 200
