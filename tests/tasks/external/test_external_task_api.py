"""/api/workflow/external-tasks/: worker accounts by token; other accounts are refused; errors are JSON with a code."""

import pytest

from tasks.models import ExternalTask, ExternalTaskStatus, WorkflowTask

from .conftest import TOPIC

pytestmark = pytest.mark.django_db
FETCH = "/api/workflow/external-tasks/fetch-and-lock"


def fetch_body(worker_id="worker-1", **extra):
    return {"workerId": worker_id, "maxTasks": 5, "topics": [{"topicName": TOPIC, "lockDuration": 60_000}], **extra}


def test_a_worker_fetches_and_completes_over_the_api(api_as, start_records_check, worker_account):
    instance = start_records_check("CASE-1", suspect="Mallory")
    client = api_as(worker_account)

    fetched = client.post(FETCH, fetch_body(), format="json")

    assert fetched.status_code == 200, fetched.content
    (item,) = fetched.json()
    assert (item["topicName"], item["businessKey"], item["variables"], item["workerId"]) == (
        TOPIC,
        "CASE-1",
        {"suspect": "Mallory"},
        "worker-1",
    )
    done = client.post(
        f"/api/workflow/external-tasks/{item['id']}/complete",
        {"workerId": "worker-1", "variables": {"hits": 0}},
        format="json",
    )
    assert done.status_code == 204, done.content
    assert ExternalTask.objects.get(pk=item["id"]).status == ExternalTaskStatus.COMPLETED
    assert WorkflowTask.objects.filter(process_instance=instance, name="Review records").exists()


def test_an_account_without_the_worker_permission_gets_403(api_as, start_records_check, caseworker_alice):
    start_records_check("CASE-1")

    response = api_as(caseworker_alice).post(FETCH, fetch_body(), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "external_tasks_forbidden"


def test_an_anonymous_caller_gets_401(api_client):
    assert api_client.post(FETCH, fetch_body(), format="json").status_code == 401


def test_completing_an_item_another_worker_holds_is_409(
    api_as, start_records_check, worker_account, other_worker_account
):
    start_records_check("CASE-1")
    (item,) = api_as(worker_account).post(FETCH, fetch_body(), format="json").json()

    response = api_as(other_worker_account).post(
        f"/api/workflow/external-tasks/{item['id']}/complete", {"workerId": "worker-2"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "external_task_locked_by_other"


def test_a_bpmn_error_nothing_catches_is_422(api_as, start_records_check, worker_account):
    start_records_check("CASE-1")
    client = api_as(worker_account)
    (item,) = client.post(FETCH, fetch_body(), format="json").json()

    response = client.post(
        f"/api/workflow/external-tasks/{item['id']}/bpmn-error",
        {"workerId": "worker-1", "errorCode": "NO_RECORD"},
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["code"] == "bpmn_error_not_caught"


def test_failure_and_extend_lock_answer_204(api_as, start_records_check, worker_account):
    start_records_check("CASE-1")
    client = api_as(worker_account)
    (item,) = client.post(FETCH, fetch_body(), format="json").json()

    extended = client.post(
        f"/api/workflow/external-tasks/{item['id']}/extend-lock",
        {"workerId": "worker-1", "newDuration": 120_000},
        format="json",
    )
    failed = client.post(
        f"/api/workflow/external-tasks/{item['id']}/failure",
        {"workerId": "worker-1", "errorMessage": "down", "retries": 0, "retryTimeout": 0},
        format="json",
    )

    assert (extended.status_code, failed.status_code) == (204, 204)
    assert ExternalTask.objects.get(pk=item["id"]).retries == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"topics": [{"topicName": TOPIC, "lockDuration": 1000}]}, "workerId"),
        ({"workerId": "w", "topics": [{"topicName": TOPIC, "lockDuration": -5}]}, "lockDuration"),
        ({"workerId": "w", "topics": "records-check"}, "topics"),
        ({"workerId": "w", "maxTasks": "ten", "topics": []}, "maxTasks"),
    ],
)
def test_malformed_fetch_requests_are_400_naming_the_field(api_as, worker_account, body, field):
    response = api_as(worker_account).post(FETCH, body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json().get("fields", {}) or field in response.json()["detail"]
