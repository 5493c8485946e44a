"""Schemathesis fuzzes every operation of the OpenAPI schema, in-process, on the migrated and seeded test database.

Each operation is its own pytest item (``test_api[GET /api/workflow/tasks/][alice]`` ...), run once as the caseworker
``alice`` and once as ``supervisor``, each authenticated by a real ``Authorization: Token`` key. The requests go
through Django's WSGI application inside the test's transaction, so everything the fuzzer changes is rolled back.
A response fails the test when it is a 5xx or does not conform to the schema (status code documented, content type,
headers and body valid).

Bounded for CI: a fixed seed, derandomized Hypothesis, no example database, and ``FUZZ_MAX_EXAMPLES`` (env,
default 25) examples per operation in the fuzzing phase, besides the schema's examples and the coverage phase.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import zlib
from collections import Counter, defaultdict
from json import dumps as json_dumps
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from cases import demo

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "20240604"))
USERS = ["alice", "supervisor"]
USERNAMES = [user.username for user in demo.USERS]

# The operations the API contract promises (DESIGN.md; issue 4 owns the task and queue ones). A new or vanished
# operation fails test_schema_lists_the_contract_operations, so the fuzzer's reach is reviewed when the API changes.
TASK_OPERATIONS = {
    "GET /api/queues/",
    "PATCH /api/queues/{queue_name}/",
    "GET /api/workflow/tasks/",
    "POST /api/workflow/tasks/",
    "GET /api/workflow/tasks/{id}/",
    "GET /api/workflow/tasks/{id}/history/",
    "POST /api/workflow/tasks/claim/next/",
    "POST /api/workflow/tasks/{id}/claim/",
    "POST /api/workflow/tasks/{id}/release/",
    "POST /api/workflow/tasks/{id}/complete/",
    "POST /api/workflow/tasks/{id}/reassign/",
    "POST /api/workflow/tasks/{id}/delegate/",
    "POST /api/workflow/tasks/{id}/resolve/",
    "POST /api/workflow/tasks/{id}/escalate/",
    "POST /api/workflow/tasks/{id}/forecast/",
}
CONTRACT_OPERATIONS = TASK_OPERATIONS | {
    "GET /api/cases/",
    "POST /api/cases/",
    "GET /api/cases/{id}/",
    "GET /api/workflow/definitions/",
    "POST /api/workflow/definitions/",
    "GET /api/workflow/decisions/",
    "POST /api/workflow/decisions/",
    "POST /api/workflow/decisions/{id}/evaluate/",
    "POST /api/workflow/processes/",
    "GET /api/workflow/processes/{id}/",
    "POST /api/workflow/external-tasks/fetch-and-lock",
    "POST /api/workflow/external-tasks/{id}/complete",
    "POST /api/workflow/external-tasks/{id}/failure",
    "POST /api/workflow/external-tasks/{id}/bpmn-error",
    "POST /api/workflow/external-tasks/{id}/extend-lock",
    # Issue 26: the caller's own in-app notifications.
    "GET /api/notifications/",
    "POST /api/notifications/{id}/read/",
    "POST /api/workflow/processes/{id}/suspend/",
    "POST /api/workflow/processes/{id}/resume/",
    "POST /api/workflow/processes/{id}/cancel/",
    "POST /api/workflow/processes/{id}/migrate/",
    "POST /api/workflow/processes/migrate/",
    "POST /api/workflow/messages/",
    "POST /api/workflow/signals/",
    # Issue 27: why a task went where it went.
    "GET /api/workflow/tasks/{id}/routing/",
}

CHECKS = {
    name: {"enabled": True}
    for name in (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
}

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "checks": {"enabled": False, **CHECKS},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
    }
)


def served_schema_dict() -> dict:
    """The document /api/schema/ serves (SERVE_PUBLIC), built without a request so that collection needs no database.

    test_served_schema_is_the_fuzzed_schema proves it equal to what the endpoint returns.
    """
    return SchemaGenerator().get_schema(request=None, public=True)


WSGI_APP = get_wsgi_application()
schema = schemathesis.openapi.from_dict(served_schema_dict(), config=CONFIG)
schema.app = WSGI_APP

# (username, operation label) -> Counter of status codes of the operation's own method (the coverage phase also
# sends other methods, e.g. OPTIONS), the items that failed, and the items that ran in this session; for the reach
# check (test_every_operation_was_exercised), which fuzzes in a run of its own what did not run here.
OBSERVED: dict[tuple[str, str], Counter] = defaultdict(Counter)
FAILED: set[tuple[str, str]] = set()
RAN: set[tuple[str, str]] = set()
# Set by the reach check for the run it starts: where that run writes what its test_api items observed.
REACH_FILE = os.environ.get("FUZZ_REACH_FILE")

# Known API bugs the fuzzer finds, while they are being fixed: (username, operation label) -> bug keys, with the
# reasons in BUGS. The xfails are strict, so a fixed operation fails until its entry goes. Empty: none known.
BUGS: dict[str, str] = {}
TASK_RETURNING = TASK_OPERATIONS - {"GET /api/queues/", "PATCH /api/queues/{queue_name}/"}
KNOWN_FAILURES: dict[tuple[str, str], list[str]] = {}


@pytest.fixture
def in_process_requests(db):
    """Let WSGI requests share the test's transaction: Django would close the connection at the end of each request.

    (Django's own test client disconnects close_old_connections the same way.)
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(in_process_requests, demo_org, make_task):
    """Tasks to hit in alice's queues (intake, triage) and elsewhere, in every state; returns their ids."""
    from entitlements.models import User
    from tasks import services

    alice = User.objects.get(username="alice")
    bob = User.objects.get(username="bob")
    supervisor = User.objects.get(username="supervisor")
    ids = []
    for i in range(6):
        ids.append(make_task("intake", name=f"Intake {i}", priority=10 * i, variables={"n": i}).task_id)
        ids.append(make_task("triage", name=f"Triage {i}", priority=90 - 10 * i).task_id)
    # Plenty of claimed tasks in both of alice's queues, so delegate/release/complete are reached whatever the
    # database sequences (and so the rotation of ids) happen to be in this run.
    for task_id in [*ids[:3], ids[6], ids[7], ids[9]]:
        services.task_claim(user=alice, task_id=task_id)
    services.task_complete(user=alice, task_id=ids[0], variables={"ok": True}, comment="done")
    services.task_reassign(user=supervisor, task_id=ids[3], assignee="alice", expected_assignee="", comment="")
    services.task_delegate(user=supervisor, task_id=ids[3], delegate="carol", comment="second opinion")
    services.task_reassign(user=supervisor, task_id=ids[5], assignee="carol", expected_assignee="", comment="")
    services.task_delegate(user=supervisor, task_id=ids[5], delegate="alice", comment="alice resolves this one")
    ids.append(make_task("fraud-investigation", name="Not alice's", required_skills=["fraud"]).task_id)
    services.task_claim(user=bob, task_id=ids[-1])
    ids.append(make_task("legal-review", name="Legal").task_id)
    # alice holds these triage tasks, undelegated, and carol covers triage: a supervisor may delegate them to her.
    delegations = [(task_id, "carol") for task_id in (ids[1], ids[7], ids[9])]
    return {"task_ids": ids, "queues": demo.ALL_QUEUES, "delegations": delegations}


@pytest.fixture(params=USERS)
def fuzz_user(request, fuzz_world, api_as):
    from entitlements.models import User

    user = User.objects.get(username=request.param)
    bugs = KNOWN_FAILURES.get((user.username, getattr(request.node, "operation_label", None)))
    if bugs:
        request.node.add_marker(pytest.mark.xfail(reason="; ".join(BUGS[bug] for bug in bugs), strict=True))
    client = api_as(user)
    return {
        "username": user.username,
        "headers": {"Authorization": client._credentials["HTTP_AUTHORIZATION"]},
        "ticks": itertools.count(),
        **fuzz_world,
    }


def pick(value, choices: list, tick: int, *, keep_one_in: int = 4):
    """Swap a generated value for a known one, in rotation, leaving about 1 in `keep_one_in` as generated."""
    slot = (tick + zlib.crc32(repr(value).encode())) % (len(choices) * (keep_one_in - 1) + len(choices))
    return choices[slot % len(choices)] if slot < len(choices) * (keep_one_in - 1) else value


def steer(case, world) -> None:
    """Point most generated ids, queue names and usernames at real rows, so the fuzzer reaches past the 404s.

    Deterministic: Hypothesis is derandomized, so the cases and therefore the ticks come in the same order each run.
    """
    tick = next(world["ticks"])
    path = case.path_parameters or {}
    task_id = path.get("id")
    if isinstance(task_id, int) and not isinstance(task_id, bool) or isinstance(task_id, str) and task_id.isdigit():
        path["id"] = str(pick(task_id, world["task_ids"], tick))
    if isinstance(path.get("queue_name"), str):
        path["queue_name"] = pick(path["queue_name"], world["queues"], tick)
    query = case.query or {}
    for name in ("queue", "queueNames"):
        if isinstance(query.get(name), str):
            query[name] = pick(query[name], world["queues"], tick)
    if isinstance(query.get("assignee"), str):
        query["assignee"] = pick(query["assignee"], ["me", *USERNAMES], tick)
    body = case.body
    if isinstance(body, dict):
        if isinstance(body.get("queue"), str):
            body["queue"] = pick(body["queue"], world["queues"], tick)
        if isinstance(body.get("queueNames"), list):
            body["queueNames"] = [
                pick(q, world["queues"], tick) if isinstance(q, str) else q for q in body["queueNames"]
            ]
        for name in ("assignee", "delegate", "expected_assignee"):
            if isinstance(body.get(name), str):
                body[name] = pick(body[name], USERNAMES, tick)
        # A delegation needs a claimed task and a delegate who may work it: few random pairs are one.
        if isinstance(body.get("delegate"), str) and "id" in path:
            delegation = pick(None, world["delegations"], tick)
            if delegation is not None:
                path["id"], body["delegate"] = str(delegation[0]), delegation[1]
        # A new task needs a due date in the future and skills that exist; random ones are all 400s.
        if isinstance(body.get("due_date"), str):
            body["due_date"] = pick(body["due_date"], ["2099-01-01T00:00:00Z"], tick)
        if isinstance(body.get("required_skills"), list) and pick(repr(body["required_skills"]), [True], tick) is True:
            body["required_skills"] = []


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api(case, fuzz_user):
    """The fixtures are deliberately shared by all examples of one item: state the fuzzer builds up (claims,
    completions) is part of what it explores; the test's transaction rolls it all back at the end."""
    steer(case, fuzz_user)
    key = (fuzz_user["username"], case.operation.label)
    RAN.add(key)
    response = case.call(headers=fuzz_user["headers"])
    if case.method.upper() == case.operation.method.upper():
        OBSERVED[key][response.status_code] += 1
    try:
        case.validate_response(response, headers=fuzz_user["headers"])
    except BaseException:
        FAILED.add(key)
        raise


def test_schema_lists_the_contract_operations():
    labels = {op.ok().label for op in schema.get_all_operations()}
    assert labels == CONTRACT_OPERATIONS


def test_every_property_of_the_schema_has_a_type():
    """An untyped property (DRF's JSONField documents "any value") lets a response carry JSON text where an object
    belongs without the fuzzer noticing: claim-next once returned its variables as the string '{}'."""
    untyped = [
        f"{name}.{prop}"
        for name, component in schema.raw_schema["components"]["schemas"].items()
        for prop, spec in component.get("properties", {}).items()
        if not {"type", "$ref", "allOf", "oneOf", "anyOf"} & set(spec)
    ]
    assert not untyped


def test_served_schema_is_the_fuzzed_schema(in_process_requests, demo_org, api_as):
    """The document fuzzed above is the one /api/schema/ serves to an authenticated client."""
    from entitlements.models import User

    client = api_as(User.objects.get(username="alice"))
    header = client._credentials["HTTP_AUTHORIZATION"]
    loaded = schemathesis.openapi.from_wsgi("/api/schema/", WSGI_APP, headers={"Authorization": header})
    assert loaded.raw_schema == schema.raw_schema


@pytest.fixture(scope="module", autouse=True)
def reach_written_out():
    """In the run the reach check starts (FUZZ_REACH_FILE set), write out what test_api observed, at the end."""
    yield
    if REACH_FILE:
        Path(REACH_FILE).write_text(
            json.dumps(
                {
                    "observed": [
                        [user, label, {str(code): n for code, n in codes.items()}]
                        for (user, label), codes in OBSERVED.items()
                    ],
                    "failed": sorted(FAILED),
                }
            )
        )


def separate_database_url() -> str:
    """A DATABASE_URL on this test database's server naming a database of its own (pytest creates test_<name>)."""
    from django.db import connection

    s = connection.settings_dict
    name = f"{s['NAME'].removeprefix('test_')}_fuzz_reach"
    host = s["HOST"] or "127.0.0.1"
    if host.startswith("/"):
        return f"postgresql://{s['USER']}@/{name}?host={host}"
    return f"postgresql://{s['USER']}:{s.get('PASSWORD') or ''}@{host}:{s['PORT'] or 5432}/{name}"


def fuzz_reach(tmp_path) -> tuple[dict[tuple[str, str], Counter], set[tuple[str, str]]]:
    """What test_api observed for every user and operation: from this session when all its items ran here, else
    from a run of all of them of its own (another process and database, as they run in a full session), so the
    check does not depend on which tests were selected or in what order they ran."""
    every_item = {(user, label) for user in USERS for label in CONTRACT_OPERATIONS}
    if every_item <= RAN:
        return OBSERVED, FAILED
    out = tmp_path / "reach.json"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", f"{__file__}::test_api", "-q", "-p", "no:cacheprovider"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "DATABASE_URL": separate_database_url(), "FUZZ_REACH_FILE": str(out)},
    )
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    reach = json.loads(out.read_text())
    observed = {
        (user, label): Counter({int(code): n for code, n in codes.items()}) for user, label, codes in reach["observed"]
    }
    return observed, {tuple(key) for key in reach["failed"]}


def test_every_operation_was_exercised(tmp_path):
    """Every operation was called as both users, and every task and queue operation got past validation and access
    checks to a 2xx at least once (for one of the users), unless its fuzz item stopped early on a failure. (Case,
    definition and process operations need BPMN and running processes, which this module does not set up: they are
    only required to be called.)"""
    observed, failed = fuzz_reach(tmp_path)
    table = "\n".join(
        f"{user:10} {label:42} {dict(sorted(codes.items()))}{'  (failed)' if (user, label) in failed else ''}"
        for (user, label), codes in sorted(observed.items())
    )
    print("\nstatus codes seen per user and operation:\n" + table)
    missing = {(user, label) for user in USERS for label in CONTRACT_OPERATIONS} - set(observed)
    assert not missing, f"never called: {sorted(missing)}\n{table}"
    succeeded = {label for (_, label), codes in observed.items() if any(200 <= code < 300 for code in codes)}
    stopped_early = {label for (_, label) in failed}
    never = TASK_OPERATIONS - succeeded - stopped_early
    assert not never, f"no 2xx response for: {sorted(never)}\n{table}"


HOSTILE_INPUTS = [
    # Found by the fuzzer and by probing the same families by hand: each must be a 2xx, or a 4xx in the JSON error
    # shape (these were 500s: an offset PostgreSQL refuses, NUL bytes in text and in JSONB).
    pytest.param("GET", "/api/workflow/tasks/?due_before=2030-01-01T00:00:00%2B19:13", None),
    pytest.param("GET", "/api/workflow/tasks/?queue=intake%00", None),
    pytest.param("POST", "/api/workflow/tasks/claim/next?queueNames=intake%00", None),
    pytest.param("POST", "/api/workflow/tasks/", {"queue": "intake", "name": "x", "variables": {"a": "b\x00"}}),
    pytest.param("POST", "/api/workflow/tasks/{claimed}/complete", {"variables": {"a\x00": 1}}),
    pytest.param("GET", "/api/workflow/tasks/?due_before=0001-01-01T00:00:00%2B01:00", None),
    pytest.param("GET", "/api/workflow/tasks/?assignee=al%00ice", None),
    pytest.param("GET", "/api/workflow/tasks/?ordering=%00", None),
    pytest.param(
        "POST", "/api/workflow/tasks/", {"queue": "intake", "name": "x", "due_date": "0001-01-01T00:00:00+01:00"}
    ),
    pytest.param("POST", "/api/workflow/tasks/", {"queue": "intake\x00", "name": "x\x00"}),
    pytest.param("POST", "/api/workflow/tasks/{claimed}/release", {"comment": "\x00"}),
    pytest.param("GET", "/api/workflow/tasks/%C2%84/", None),
    pytest.param("GET", "/api/workflow/tasks/?page=0", None),
]


@pytest.mark.parametrize("method, path, body", HOSTILE_INPUTS)
def test_hostile_input_is_never_a_500(method, path, body, api_as, caseworker_alice, make_task):
    """Pinned examples of what the fuzzer (and hand probing of the same families) found: never a 500 for bad input."""
    client = api_as(caseworker_alice)
    task = make_task("intake", name="Hostile")
    client.post(f"/api/workflow/tasks/{task.task_id}/claim")
    path = path.replace("{claimed}", str(task.task_id))
    response = client.generic(
        method, path, **({"data": json_dumps(body), "content_type": "application/json"} if body else {})
    )
    assert response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    if response.status_code >= 400:
        assert {"code", "detail"} <= set(response.json())
