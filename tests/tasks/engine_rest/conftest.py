"""A real HTTP server for Camunda's client: Django's live server thread on a port of this worktree's range."""

import os

import pytest
from django.test.testcases import LiveServerThread, _StaticFilesHandler

from tasks.bpmn import workflows
from tests.tasks.external.conftest import (
    deploy_with_worker,
    wakeups_stopped_at_the_end,  # noqa: F401  (long polls listen)
)

# ENGINE_REST_TEST_PORT: where the server listens (one worktree, one port range).
PORT = int(os.environ.get("ENGINE_REST_TEST_PORT", "18401"))
WORKER_PASSWORD = "pw-for-tests-1"  # tests/factories.py: UserFactory


@pytest.fixture
def engine_server(committed_db):
    """The application served on 127.0.0.1:PORT in threads of this process (requests in parallel, as gthread)."""
    server = LiveServerThread("127.0.0.1", _StaticFilesHandler, port=PORT)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.terminate()


@pytest.fixture
def deployed(committed_db):
    return deploy_with_worker("camunda-worker")


def start(supervisor, business_key, **variables):
    return workflows.process_start(
        user=supervisor, process_key="records_check", business_key=business_key, variables=variables
    )


# The database-only tests here use the external tasks' fixtures.
from tests.tasks.external.conftest import (  # noqa: E402, F401
    records_check_definition,
    start_records_check,
    worker_account,
)
