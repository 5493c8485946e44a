"""/engine-rest/ in Camunda's shapes: start by key, read an instance and its typed variables; typed variables in."""

import pytest

from tasks.engine_rest import variables as typed
from tasks.models import ExternalTask, ProcessInstance
from tests.tasks.external.conftest import TOPIC

pytestmark = pytest.mark.django_db


def test_start_by_key_takes_typed_variables_and_answers_camundas_process_instance(
    api_as, records_check_definition, supervisor_sam
):
    response = api_as(supervisor_sam).post(
        "/engine-rest/process-definition/key/records_check/start",
        {
            "businessKey": "CASE-5",
            "variables": {
                "amount": {"value": "12", "type": "Integer"},
                "urgent": {"value": True, "type": "Boolean"},
                "subject": {"value": {"name": "Mallory"}, "type": "Json"},
                "note": {"value": "plain"},
            },
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["businessKey"], body["ended"], body["suspended"]) == ("CASE-5", False, False)
    instance = ProcessInstance.objects.get(pk=int(body["id"]))
    assert instance.variables == {"amount": 12, "urgent": True, "subject": {"name": "Mallory"}, "note": "plain"}
    assert ExternalTask.objects.filter(process_instance=instance, topic_name=TOPIC).exists()


def test_a_worker_reads_the_typed_variables_of_an_instance_with_an_external_task(
    api_as, start_records_check, worker_account
):
    instance = start_records_check("CASE-6", amount=5_000_000_000, ratio=0.5, name="x", tags=["a"])
    client = api_as(worker_account)

    variables = client.get(f"/engine-rest/process-instance/{instance.pk}/variables").json()
    one = client.get(f"/engine-rest/process-instance/{instance.pk}/variables/name").json()
    detail = client.get(f"/engine-rest/process-instance/{instance.pk}")

    assert variables == {
        "amount": {"type": "Long", "value": 5_000_000_000, "valueInfo": {}},
        "ratio": {"type": "Double", "value": 0.5, "valueInfo": {}},
        "name": {"type": "String", "value": "x", "valueInfo": {}},
        "tags": {"type": "Json", "value": '["a"]', "valueInfo": {}},
    }
    assert one == {"type": "String", "value": "x", "valueInfo": {}}
    assert detail.status_code == 200 and detail.json()["id"] == str(instance.pk)


def test_an_instance_outside_the_callers_reach_is_404(api_as, start_records_check, caseworker_alice):
    instance = start_records_check("CASE-7")  # no user task yet: in no queue of alice's

    response = api_as(caseworker_alice).get(f"/engine-rest/process-instance/{instance.pk}")

    assert response.status_code == 404
    assert response.json()["type"] == "InvalidRequestException"


@pytest.mark.parametrize(
    "value",
    [{"value": "abc", "type": "Integer"}, {"value": "x", "type": "Object"}, {"value": "maybe", "type": "Boolean"}],
)
def test_typed_values_that_do_not_fit_their_type_are_refused(value):
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        typed.from_camunda({"v": value})


def test_an_unknown_external_task_id_is_404_in_camundas_shape(api_as, worker_account):
    response = api_as(worker_account).post(
        "/engine-rest/external-task/not-a-number/complete", {"workerId": "w"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["type"] == "InvalidRequestException"


def complete_external(worker, instance):
    from tasks.external import services

    (item,) = services.external_tasks_fetch_and_lock(
        user=worker,
        worker_id="w",
        topics=[services.TopicRequest(topic_name=TOPIC, lock_duration_ms=60_000)],
        max_tasks=1,
    )
    services.external_task_complete(user=worker, external_task_id=item.external_task_id, worker_id="w")


def test_a_caseworker_lists_claims_and_completes_a_user_task_in_camundas_shapes(
    api_as, start_records_check, worker_account, caseworker_alice
):
    instance = start_records_check("CASE-20")
    complete_external(worker_account, instance)
    client = api_as(caseworker_alice)

    listed = client.get(f"/engine-rest/task?processInstanceId={instance.pk}")
    (task,) = listed.json()
    claimed = client.post(f"/engine-rest/task/{task['id']}/claim", {"userId": caseworker_alice.username}, format="json")
    done = client.post(
        f"/engine-rest/task/{task['id']}/complete",
        {"variables": {"approved": {"value": "true", "type": "Boolean"}}},
        format="json",
    )

    assert (task["name"], task["taskDefinitionKey"], task["assignee"]) == ("Review records", "Activity_review", None)
    assert (claimed.status_code, done.status_code) == (204, 204), done.content
    instance.refresh_from_db()
    assert instance.status == "COMPLETED" and instance.variables["approved"] is True


def test_claiming_for_another_user_is_refused(api_as, start_records_check, worker_account, caseworker_alice):
    instance = start_records_check("CASE-21")
    complete_external(worker_account, instance)
    client = api_as(caseworker_alice)
    (task,) = client.get(f"/engine-rest/task?processInstanceId={instance.pk}").json()

    response = client.post(f"/engine-rest/task/{task['id']}/claim", {"userId": "bob"}, format="json")

    assert response.status_code == 400


def test_the_task_list_shows_nothing_outside_the_callers_queues(
    api_as, start_records_check, worker_account, legal_reviewer_carol
):
    instance = start_records_check("CASE-22")
    complete_external(worker_account, instance)

    response = api_as(legal_reviewer_carol).get(f"/engine-rest/task?processInstanceId={instance.pk}")

    assert response.status_code == 200 and response.json() == []


def test_a_message_correlated_through_engine_rest_wakes_the_waiting_instance(api_as, supervisor_sam, caseworker_alice):
    from tasks.models import ProcessStatus
    from tests.tasks.test_messages import active, deploy, waiting_for_documents, work_through

    deploy(supervisor_sam, "message_catch")
    instance = waiting_for_documents(supervisor_sam, caseworker_alice, business_key="DOC-9")
    client = api_as(caseworker_alice)
    body = {
        "messageName": "documents_received",
        "businessKey": "DOC-9",
        "processVariables": {"pages": {"value": "4", "type": "Integer"}},
    }

    assert client.post("/engine-rest/message", body, format="json").status_code == 204
    instance.refresh_from_db()
    assert instance.variables["pages"] == 4 and instance.waiting_messages == []
    assert active(instance) == [("review_documents", "OPEN")]
    work_through(caseworker_alice, instance, "review_documents")
    assert ProcessInstance.objects.get(pk=instance.pk).status == ProcessStatus.COMPLETED

    again = client.post("/engine-rest/message", {**body, "resultEnabled": True}, format="json")
    assert again.status_code == 404 and again.json()["code"] == "message_not_correlated"
    refused = client.post("/engine-rest/message", {**body, "all": True}, format="json")
    assert refused.status_code == 400 and "all" in refused.json()["fields"]


def test_a_message_start_through_engine_rest_answers_its_result(api_as, supervisor_sam, caseworker_alice):
    from tests.tasks.test_messages import deploy

    deploy(supervisor_sam, "message_start")
    started = api_as(caseworker_alice).post(
        "/engine-rest/message",
        {"messageName": "payment_received", "businessKey": "PAY-7", "resultEnabled": True},
        format="json",
    )

    assert started.status_code == 200, started.content
    [result] = started.json()
    instance = ProcessInstance.objects.get(business_key="PAY-7")
    assert result["resultType"] == "ProcessDefinition" and result["processInstance"]["id"] == str(instance.pk)


def test_a_message_body_that_is_not_an_object_is_400(api_as, caseworker_alice):
    response = api_as(caseworker_alice).post("/engine-rest/message", ["documents_received"], format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_body"
