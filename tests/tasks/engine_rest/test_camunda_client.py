"""Camunda's published Python client (camunda-external-task-client-python3), unmodified, against /engine-rest/ on a
real HTTP server: it fetches, locks and completes or fails the external tasks of a deployed model."""

import threading
import time

import requests
from camunda.client.external_task_client import ExternalTaskClient
from camunda.external_task.external_task_worker import ExternalTaskWorker

from entitlements.services import api_token_create
from tasks.bpmn import workflows
from tasks.models import ExternalTask, ExternalTaskStatus, ProcessInstance, WorkflowTask
from tests.tasks.external.test_external_task_bpmn_errors import MODEL as RECORDS_CHECK_ERRORS_FILE

from .conftest import WORKER_PASSWORD, start

TOPIC = "records-check"
CLIENT_CONFIG = {"maxTasks": 1, "lockDuration": 10_000, "asyncResponseTimeout": 0, "retries": 2, "retryTimeout": 0}


def basic_auth(worker):
    return {"auth_basic": {"username": worker.username, "password": WORKER_PASSWORD}}


def test_the_client_completes_an_external_task_and_the_instance_moves_on(engine_server, deployed):
    supervisor, worker = deployed
    instance = start(supervisor, "CASE-9", suspect="Mallory", hits_so_far=0)
    seen = {}

    def check_records(task):
        seen["suspect"] = task.get_variable("suspect")
        seen["business_key"] = task.get_business_key()
        return task.complete({"records_found": 3, "clean": False, "notes": {"source": "registry"}})

    client_worker = ExternalTaskWorker(
        worker_id="camunda-worker-1",
        base_url=f"{engine_server}/engine-rest",
        config={**CLIENT_CONFIG, **basic_auth(worker)},
    )
    client_worker.fetch_and_execute(TOPIC, check_records)

    assert seen == {"suspect": "Mallory", "business_key": "CASE-9"}
    item = ExternalTask.objects.get(process_instance=instance)
    assert (item.status, item.worker_id, item.locked_by) == (ExternalTaskStatus.COMPLETED, "camunda-worker-1", worker)
    instance = ProcessInstance.objects.get(pk=instance.pk)
    assert (instance.variables["records_found"], instance.variables["clean"], instance.variables["notes"]) == (
        3,
        False,
        {"source": "registry"},
    )
    assert WorkflowTask.objects.filter(process_instance=instance, name="Review records").exists()


def test_the_client_reports_a_failure_that_the_engine_retries(engine_server, deployed):
    supervisor, worker = deployed
    instance = start(supervisor, "CASE-10")

    client_worker = ExternalTaskWorker(
        worker_id="camunda-worker-1",
        base_url=f"{engine_server}/engine-rest",
        config={**CLIENT_CONFIG, **basic_auth(worker)},
    )
    client_worker.fetch_and_execute(TOPIC, lambda task: task.failure("registry down", "timeout after 30 s", 2, 0))

    item = ExternalTask.objects.get(process_instance=instance)
    assert (item.status, item.error_message, item.error_details) == (
        ExternalTaskStatus.ACTIVE,
        "registry down",
        "timeout after 30 s",
    )
    assert item.retries == 2  # the client sets its max retries on a first failure, then counts down
    assert item.lock_expires_at is None


def test_a_long_polling_client_gets_an_item_started_while_it_waits(engine_server, deployed):
    supervisor, worker = deployed
    token = api_token_create(user=worker)
    client = ExternalTaskClient(
        "camunda-poller",
        f"{engine_server}/engine-rest",
        {**CLIENT_CONFIG, "asyncResponseTimeout": 10_000, "auth_bearer": {"access_token": token.key}},
    )
    answer = {}
    poll = threading.Thread(target=lambda: answer.update(items=client.fetch_and_lock(TOPIC)))
    poll.start()
    time.sleep(0.5)  # the poll finds nothing and waits; if it has not yet, it finds the item at once
    start(supervisor, "CASE-LP")
    poll.join(timeout=15)

    assert [item["businessKey"] for item in answer["items"]] == ["CASE-LP"]
    (item,) = answer["items"]
    assert client.complete(item["id"], {"clean": True})


def test_an_account_without_the_worker_permission_is_refused_in_camundas_error_shape(engine_server, deployed):
    from tests.factories import UserFactory

    supervisor, _ = deployed
    start(supervisor, "CASE-11")
    outsider = UserFactory(username="not-a-worker")

    response = requests.post(
        f"{engine_server}/engine-rest/external-task/fetchAndLock",
        json={"workerId": "w", "maxTasks": 1, "topics": [{"topicName": TOPIC, "lockDuration": 1000}]},
        auth=(outsider.username, WORKER_PASSWORD),
        timeout=10,
    )

    assert response.status_code == 403
    body = response.json()
    assert body["type"] == "InvalidRequestException" and body["code"] == "external_tasks_forbidden"
    assert body["message"]


def test_wrong_credentials_are_401(engine_server, deployed):
    response = requests.post(
        f"{engine_server}/engine-rest/external-task/fetchAndLock",
        json={"workerId": "w", "maxTasks": 1, "topics": []},
        auth=("camunda-worker", "wrong"),
        timeout=10,
    )

    assert response.status_code == 401


def test_the_client_raises_a_bpmn_error_that_a_boundary_event_catches(engine_server, deployed):
    supervisor, worker = deployed
    workflows.definition_deploy(user=supervisor, bpmn_xml=RECORDS_CHECK_ERRORS_FILE.read_text())
    instance = workflows.process_start(user=supervisor, process_key="records_check_errors", business_key="CASE-13")

    client_worker = ExternalTaskWorker(
        worker_id="camunda-worker-1",
        base_url=f"{engine_server}/engine-rest",
        config={**CLIENT_CONFIG, **basic_auth(worker)},
    )
    client_worker.fetch_and_execute(
        TOPIC, lambda task: task.bpmn_error("REGISTRY_DOWN", "registry down", {"attempts": 2})
    )

    item = ExternalTask.objects.get(process_instance=instance)
    assert item.status == ExternalTaskStatus.COMPLETED
    assert list(
        WorkflowTask.objects.filter(process_instance=instance).values_list("task_definition_key", flat=True)
    ) == ["Activity_manual_check"]
    assert ProcessInstance.objects.get(pk=instance.pk).variables["attempts"] == 2


def test_a_bpmn_error_nothing_catches_is_422_in_camundas_error_shape(engine_server, deployed):
    supervisor, worker = deployed
    start(supervisor, "CASE-12")
    client = ExternalTaskClient(
        "camunda-worker-1", f"{engine_server}/engine-rest", {**CLIENT_CONFIG, **basic_auth(worker)}
    )
    (item,) = client.fetch_and_lock(TOPIC)

    response = requests.post(
        f"{engine_server}/engine-rest/external-task/{item['id']}/bpmnError",
        json={"workerId": "camunda-worker-1", "errorCode": "NO_RECORD", "errorMessage": "none"},
        auth=(worker.username, WORKER_PASSWORD),
        timeout=10,
    )

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "bpmn_error_not_caught" and body["type"] == "InvalidRequestException"
    assert ExternalTask.objects.get(pk=int(item["id"])).status == ExternalTaskStatus.ACTIVE


def test_a_bpmn_error_from_a_worker_not_holding_the_lock_is_409(engine_server, deployed):
    supervisor, worker = deployed
    start(supervisor, "CASE-14")
    client = ExternalTaskClient(
        "camunda-worker-1", f"{engine_server}/engine-rest", {**CLIENT_CONFIG, **basic_auth(worker)}
    )
    (item,) = client.fetch_and_lock(TOPIC)

    response = requests.post(
        f"{engine_server}/engine-rest/external-task/{item['id']}/bpmnError",
        json={"workerId": "camunda-worker-2", "errorCode": "NO_RECORD"},
        auth=(worker.username, WORKER_PASSWORD),
        timeout=10,
    )

    assert response.status_code == 409 and response.json()["code"] == "external_task_locked_by_other"
