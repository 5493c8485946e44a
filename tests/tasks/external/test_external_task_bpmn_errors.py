"""BPMN errors raised by external task workers: caught by an error boundary event on the service task or on the
subprocess around it (records_check_errors.bpmn, as Camunda Modeler writes it), through the services and through
POST /api/workflow/external-tasks/{id}/bpmn-error; refused for another worker and for a code nothing catches."""

from pathlib import Path

import pytest

from core.errors import Conflict, NotFound
from tasks import services as task_services
from tasks.bpmn import workflows
from tasks.external import services
from tasks.external.services import TopicRequest
from tasks.models import (
    ExternalTask,
    ExternalTaskEventType,
    ExternalTaskHistory,
    ExternalTaskStatus,
    ProcessInstance,
    ProcessStatus,
    TaskStatus,
    WorkflowTask,
)

from .conftest import TOPIC

pytestmark = pytest.mark.django_db
MODEL = Path(__file__).with_name("records_check_errors.bpmn")


@pytest.fixture
def start_checks(supervisor_sam):
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=MODEL.read_text())

    def start(business_key: str = "CASE-1", **variables):
        return workflows.process_start(
            user=supervisor_sam, process_key="records_check_errors", business_key=business_key, variables=variables
        )

    return start


def fetch(user, worker_id="worker-1"):
    (locked,) = services.external_tasks_fetch_and_lock(
        user=user, worker_id=worker_id, topics=[TopicRequest(topic_name=TOPIC, lock_duration_ms=60_000)], max_tasks=1
    )
    return locked


def open_tasks(instance) -> list[str]:
    return sorted(
        WorkflowTask.objects.filter(process_instance=instance, status=TaskStatus.OPEN).values_list(
            "task_definition_key", flat=True
        )
    )


def events(item_id) -> list[str]:
    return list(ExternalTaskHistory.objects.filter(external_task_id=item_id).values_list("event_type", flat=True))


def test_an_error_caught_on_the_service_task_follows_its_boundary_path_with_code_message_and_variables(
    start_checks, worker_account, caseworker_alice
):
    instance = start_checks("CASE-1", suspect="Mallory")
    locked = fetch(worker_account)

    item = services.external_task_bpmn_error(
        user=worker_account,
        external_task_id=locked.external_task_id,
        worker_id="worker-1",
        error_code="NO_RECORD",
        error_message="no record for Mallory",
        variables={"registry": "national"},
    )

    assert item.status == ExternalTaskStatus.COMPLETED and item.lock_expires_at is None
    instance.refresh_from_db()
    assert instance.status == ProcessStatus.RUNNING
    assert open_tasks(instance) == ["Activity_record_missing"]
    missing = WorkflowTask.objects.get(process_instance=instance, task_definition_key="Activity_record_missing")
    task_services.task_claim(user=caseworker_alice, task_id=missing.pk)
    task_services.task_complete(user=caseworker_alice, task_id=missing.pk, variables={})
    instance.refresh_from_db()
    assert open_tasks(instance) == ["Activity_review"]  # the boundary path ended the subprocess normally
    assert (instance.variables["error_code"], instance.variables["error_message"]) == (
        "NO_RECORD",
        "no record for Mallory",
    )
    assert (instance.variables["registry"], instance.variables["suspect"]) == ("national", "Mallory")
    history = ExternalTaskHistory.objects.filter(external_task_id=item.pk).order_by("pk").last()
    assert (history.event_type, history.actor, history.worker_id) == (
        ExternalTaskEventType.BPMN_ERROR,
        worker_account,
        "worker-1",
    )
    assert history.new_values["error_code"] == "NO_RECORD"


def test_an_error_the_task_does_not_catch_is_caught_on_its_subprocess_which_it_leaves(
    start_checks, worker_account, caseworker_alice
):
    instance = start_checks()
    locked = fetch(worker_account)

    services.external_task_bpmn_error(
        user=worker_account, external_task_id=locked.external_task_id, worker_id="worker-1", error_code="REGISTRY_DOWN"
    )

    instance.refresh_from_db()
    assert open_tasks(instance) == ["Activity_manual_check"]
    assert "error_code" not in instance.variables  # that boundary event names no variable for it
    assert ExternalTask.objects.get(pk=locked.external_task_id).status == ExternalTaskStatus.COMPLETED
    manual = WorkflowTask.objects.get(process_instance=instance, task_definition_key="Activity_manual_check")
    task_services.task_claim(user=caseworker_alice, task_id=manual.pk)
    task_services.task_complete(user=caseworker_alice, task_id=manual.pk, variables={})
    instance.refresh_from_db()
    assert instance.status == ProcessStatus.COMPLETED  # by the boundary path: Review records never opened
    assert not WorkflowTask.objects.filter(process_instance=instance, task_definition_key="Activity_review").exists()


def test_an_error_nothing_catches_is_422_and_changes_nothing(start_checks, worker_account):
    instance = start_checks()
    locked = fetch(worker_account)
    state_before = ProcessInstance.objects.get(pk=instance.pk).engine_state

    with pytest.raises(services.Unprocessable) as refused:
        services.external_task_bpmn_error(
            user=worker_account, external_task_id=locked.external_task_id, worker_id="worker-1", error_code="OTHER"
        )

    assert refused.value.code == "bpmn_error_not_caught" and refused.value.http_status == 422
    assert "Activity_records_check" in refused.value.detail
    item = ExternalTask.objects.get(pk=locked.external_task_id)
    assert (item.status, item.worker_id) == (ExternalTaskStatus.ACTIVE, "worker-1")
    assert item.lock_expires_at is not None  # still held: the worker may report a failure instead
    assert ProcessInstance.objects.get(pk=instance.pk).engine_state == state_before
    assert not WorkflowTask.objects.filter(process_instance=instance).exists()
    assert events(item.pk)[-1] == ExternalTaskEventType.REFUSED
    services.external_task_complete(user=worker_account, external_task_id=item.pk, worker_id="worker-1")
    assert open_tasks(instance) == ["Activity_review"]


def test_a_model_without_error_events_refuses_every_code(start_records_check, worker_account):
    start_records_check("CASE-1")
    locked = fetch(worker_account)

    with pytest.raises(services.Unprocessable) as refused:
        services.external_task_bpmn_error(
            user=worker_account, external_task_id=locked.external_task_id, worker_id="worker-1", error_code="NO_RECORD"
        )

    assert refused.value.code == "bpmn_error_not_caught"


def test_another_worker_may_not_raise_an_error_on_an_item_it_does_not_hold(
    start_checks, worker_account, other_worker_account
):
    instance = start_checks()
    locked = fetch(worker_account)

    with pytest.raises(Conflict) as refused:
        services.external_task_bpmn_error(
            user=other_worker_account,
            external_task_id=locked.external_task_id,
            worker_id="worker-2",
            error_code="NO_RECORD",
        )

    assert refused.value.code == "external_task_locked_by_other"
    assert ExternalTask.objects.get(pk=locked.external_task_id).status == ExternalTaskStatus.ACTIVE
    refusal = ExternalTaskHistory.objects.filter(external_task_id=locked.external_task_id).order_by("pk").last()
    assert (refusal.event_type, refusal.actor, refusal.new_values["action"]) == (
        ExternalTaskEventType.REFUSED,
        other_worker_account,
        "bpmn-error",
    )
    assert open_tasks(instance) == []


def test_an_item_not_locked_or_already_done_refuses_an_error(start_checks, worker_account):
    start_checks()
    item = ExternalTask.objects.get()
    with pytest.raises(Conflict):
        services.external_task_bpmn_error(
            user=worker_account, external_task_id=item.pk, worker_id="worker-1", error_code="NO_RECORD"
        )
    fetch(worker_account)
    services.external_task_bpmn_error(
        user=worker_account, external_task_id=item.pk, worker_id="worker-1", error_code="NO_RECORD"
    )
    with pytest.raises(Conflict) as refused:
        services.external_task_bpmn_error(
            user=worker_account, external_task_id=item.pk, worker_id="worker-1", error_code="NO_RECORD"
        )
    assert refused.value.code == "external_task_not_active"
    with pytest.raises(NotFound):
        services.external_task_bpmn_error(
            user=worker_account, external_task_id=item.pk + 1000, worker_id="worker-1", error_code="NO_RECORD"
        )


def test_an_account_that_is_not_a_worker_is_403(api_as, start_checks, worker_account, caseworker_alice):
    start_checks()
    locked = fetch(worker_account)
    response = api_as(caseworker_alice).post(
        f"/api/workflow/external-tasks/{locked.external_task_id}/bpmn-error",
        {"workerId": "worker-1", "errorCode": "NO_RECORD"},
        format="json",
    )
    assert response.status_code == 403 and response.json()["code"] == "external_tasks_forbidden"
    assert ExternalTask.objects.get(pk=locked.external_task_id).status == ExternalTaskStatus.ACTIVE


def test_the_api_raises_an_error_with_message_and_variables(api_as, start_checks, worker_account):
    instance = start_checks()
    client = api_as(worker_account)
    locked = fetch(worker_account)

    response = client.post(
        f"/api/workflow/external-tasks/{locked.external_task_id}/bpmn-error",
        {"workerId": "worker-1", "errorCode": "REGISTRY_DOWN", "errorMessage": "down", "variables": {"checked": True}},
        format="json",
    )

    assert response.status_code == 204, response.content
    instance.refresh_from_db()
    assert open_tasks(instance) == ["Activity_manual_check"]
    assert instance.variables["checked"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"workerId": "worker-1"}, "errorCode"),
        ({"workerId": "worker-1", "errorCode": "X", "variables": [1]}, "variables"),
    ],
)
def test_a_bad_body_is_400_naming_the_field(api_as, start_checks, worker_account, body, field):
    start_checks()
    locked = fetch(worker_account)
    response = api_as(worker_account).post(
        f"/api/workflow/external-tasks/{locked.external_task_id}/bpmn-error", body, format="json"
    )
    assert response.status_code == 400 and field in response.json()["fields"], response.content


def test_an_uncaught_code_through_the_api_is_422(api_as, start_checks, worker_account):
    start_checks()
    locked = fetch(worker_account)
    response = api_as(worker_account).post(
        f"/api/workflow/external-tasks/{locked.external_task_id}/bpmn-error",
        {"workerId": "worker-1", "errorCode": "UNKNOWN"},
        format="json",
    )
    assert response.status_code == 422 and response.json()["code"] == "bpmn_error_not_caught"


ERROR_EVENT_SUBPROCESS = """
    <bpmn:subProcess id="Activity_on_error" name="On any error" triggeredByEvent="true">
      <bpmn:startEvent id="Event_any_error" name="Any error">
        <bpmn:outgoing>Flow_to_handle</bpmn:outgoing>
        <bpmn:errorEventDefinition id="ErrorEventDefinition_any" />
      </bpmn:startEvent>
      <bpmn:userTask id="Activity_handle_error" name="Handle the error" camunda:candidateGroups="intake">
        <bpmn:incoming>Flow_to_handle</bpmn:incoming>
        <bpmn:outgoing>Flow_handled</bpmn:outgoing>
      </bpmn:userTask>
      <bpmn:endEvent id="Event_handled">
        <bpmn:incoming>Flow_handled</bpmn:incoming>
      </bpmn:endEvent>
      <bpmn:sequenceFlow id="Flow_to_handle" sourceRef="Event_any_error" targetRef="Activity_handle_error" />
      <bpmn:sequenceFlow id="Flow_handled" sourceRef="Activity_handle_error" targetRef="Event_handled" />
    </bpmn:subProcess>
  </bpmn:process>"""


def test_an_error_no_boundary_event_catches_starts_the_error_event_subprocess(
    supervisor_sam, worker_account, caseworker_alice
):
    xml = (
        (Path(__file__).with_name("records_check.bpmn"))
        .read_text()
        .replace("  </bpmn:process>", ERROR_EVENT_SUBPROCESS)
    )
    workflows.definition_deploy(user=supervisor_sam, bpmn_xml=xml)
    instance = workflows.process_start(user=supervisor_sam, process_key="records_check", business_key="CASE-E")
    locked = fetch(worker_account)

    services.external_task_bpmn_error(
        user=worker_account,
        external_task_id=locked.external_task_id,
        worker_id="worker-1",
        error_code="ANYTHING",
        variables={"reason": "registry gone"},
    )

    assert open_tasks(instance) == ["Activity_handle_error"]  # the service task's path is interrupted
    assert ExternalTask.objects.get(pk=locked.external_task_id).status == ExternalTaskStatus.COMPLETED
    handle = WorkflowTask.objects.get(process_instance=instance, task_definition_key="Activity_handle_error")
    task_services.task_claim(user=caseworker_alice, task_id=handle.pk)
    task_services.task_complete(user=caseworker_alice, task_id=handle.pk, variables={})
    instance.refresh_from_db()
    assert instance.status == ProcessStatus.COMPLETED and instance.variables["reason"] == "registry gone"
    assert not WorkflowTask.objects.filter(process_instance=instance, task_definition_key="Activity_review").exists()
