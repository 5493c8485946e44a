"""The /engine-rest/ endpoints: Camunda 7's paths, bodies and answers, over the services of tasks/ (same checks).

Errors keep our `code` and `detail` and add Camunda's `type` and `message`.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import exception_handler
from core.errors import InvalidInput, NotFound
from entitlements.authentication import SessionAuthentication, TokenAuthentication

from .. import selectors, services
from ..api import via
from ..bpmn import workflows
from ..bpmn.messages import message_correlate
from ..external import services as external
from ..external.api import field
from ..models import ACTIVE_TASK_STATUSES, ExternalTask, ProcessInstance, ProcessStatus, WorkflowTask
from . import variables as typed
from .authentication import BasicAuthentication, BearerTokenAuthentication


def camunda_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict):
        kind = "InvalidRequestException" if response.status_code < 500 else "RestException"
        response.data = {"type": kind, "message": response.data.get("detail", ""), **response.data}
    return response


class EngineRestView(APIView):
    schema = None  # Camunda's own reference documents these paths; /api/schema/ is ours
    authentication_classes = [
        TokenAuthentication,
        BearerTokenAuthentication,
        BasicAuthentication,
        SessionAuthentication,
    ]

    def get_exception_handler(self):
        return camunda_exception_handler


def _id(value: str, what: str) -> int:
    if not value.isdigit():
        raise NotFound(f"{what} {value} not found", code=f"{what.replace(' ', '_')}_not_found")
    return int(value)


# --- external tasks ---------------------------------------------------------------------------------------------


def _topics(data) -> list[external.TopicRequest]:
    topics = field(data, "topics", list)
    return [
        external.TopicRequest(
            topic_name=field(topic, "topicName", str),
            lock_duration_ms=field(topic, "lockDuration", int),
            variables=field(topic, "variables", list, required=False),
        )
        for topic in topics
    ]


def locked_external_task(item: external.LockedExternalTask) -> dict:
    """Camunda's LockedExternalTaskDto."""
    return {
        "activityId": item.activity_id,
        "activityInstanceId": item.engine_task_id,
        "errorMessage": item.error_message or None,
        "errorDetails": item.error_details or None,
        "executionId": item.engine_task_id,
        "id": str(item.external_task_id),
        "lockExpirationTime": item.lock_expires_at.isoformat(timespec="milliseconds"),
        "processDefinitionId": f"{item.process_definition_key}:{item.process_definition_id}",
        "processDefinitionKey": item.process_definition_key,
        "processDefinitionVersionTag": None,
        "processInstanceId": str(item.process_instance_id),
        "tenantId": None,
        "retries": item.retries,
        "suspended": False,
        "workerId": item.worker_id,
        "topicName": item.topic_name,
        "priority": item.priority,
        "businessKey": item.business_key,
        "variables": typed.to_camunda(item.variables),
        "extensionProperties": {},
    }


class FetchAndLock(EngineRestView):
    """POST external-task/fetchAndLock; asyncResponseTimeout long-polls (capped by the server's setting)."""

    def post(self, request):
        data = request.data
        locked = external.external_tasks_fetch_and_lock(
            user=request.user,
            worker_id=field(data, "workerId", str),
            topics=_topics(data),
            max_tasks=field(data, "maxTasks", int),
            async_response_timeout_ms=field(data, "asyncResponseTimeout", int, required=False, default=0),
        )
        return Response([locked_external_task(item) for item in locked])


class ExternalTaskComplete(EngineRestView):
    def post(self, request, pk: str):
        external.external_task_complete(
            user=request.user,
            external_task_id=_id(pk, "external task"),
            worker_id=field(request.data, "workerId", str),
            # localVariables have no scope of their own here: a task's variables are the instance's.
            variables={
                **typed.from_camunda(request.data.get("localVariables"), field="localVariables"),
                **typed.from_camunda(request.data.get("variables")),
            },
        )
        return Response(status=204)


class ExternalTaskFailure(EngineRestView):
    def post(self, request, pk: str):
        data = request.data
        external.external_task_fail(
            user=request.user,
            external_task_id=_id(pk, "external task"),
            worker_id=field(data, "workerId", str),
            error_message=field(data, "errorMessage", str, required=False, default=""),
            error_details=field(data, "errorDetails", str, required=False, default=""),
            retries=field(data, "retries", int),
            retry_timeout_ms=field(data, "retryTimeout", int, required=False, default=0),
        )
        return Response(status=204)


class ExternalTaskBpmnError(EngineRestView):
    def post(self, request, pk: str):
        external.external_task_bpmn_error(
            user=request.user,
            external_task_id=_id(pk, "external task"),
            worker_id=field(request.data, "workerId", str),
            error_code=field(request.data, "errorCode", str),
            error_message=field(request.data, "errorMessage", str, required=False, default=""),
            variables=typed.from_camunda(request.data.get("variables")),
        )
        return Response(status=204)


class ExternalTaskExtendLock(EngineRestView):
    def post(self, request, pk: str):
        external.external_task_extend_lock(
            user=request.user,
            external_task_id=_id(pk, "external task"),
            worker_id=field(request.data, "workerId", str),
            new_duration_ms=field(request.data, "newDuration", int),
        )
        return Response(status=204)


class ExternalTaskUnlock(EngineRestView):
    def post(self, request, pk: str):
        external.external_task_unlock(user=request.user, external_task_id=_id(pk, "external task"))
        return Response(status=204)


# --- process definitions and instances --------------------------------------------------------------------------


def process_instance_json(instance: ProcessInstance) -> dict:
    """Camunda's ProcessInstanceDto."""
    return {
        "id": str(instance.pk),
        "definitionId": f"{instance.definition.process_key}:{instance.definition_id}",
        "businessKey": instance.business_key,
        "caseInstanceId": None,
        "ended": instance.status in (ProcessStatus.COMPLETED, ProcessStatus.CANCELLED),
        "suspended": instance.status == ProcessStatus.SUSPENDED,
        "tenantId": None,
        "links": [],
    }


class MessageCorrelation(EngineRestView):
    """POST message: Camunda's correlation (messageName, businessKey, correlationKeys, processVariables) through
    the same service as POST /api/workflow/messages: one waiting instance, or a start by a message start event.
    204 without a body; with `resultEnabled`, 200 and the one result. `all` (several at once) is refused."""

    def post(self, request):
        data = request.data
        if not isinstance(data, dict):
            raise InvalidInput("the body must be a JSON object", code="invalid_body")
        if data.get("all"):
            raise InvalidInput(
                "all=true is not supported: a message reaches exactly one instance", fields={"all": ["Not supported."]}
            )
        outcome = message_correlate(
            user=request.user,
            message_name=field(data, "messageName", str),
            business_key=field(data, "businessKey", str, required=False, default="") or None,
            correlation_keys=typed.from_camunda(data.get("correlationKeys"), field="correlationKeys"),
            variables=typed.from_camunda(data.get("processVariables"), field="processVariables"),
            via_account=via(request),
        )
        if not data.get("resultEnabled"):
            return Response(status=204)
        result_type = "ProcessDefinition" if outcome.started else "Execution"
        return Response([{"resultType": result_type, "processInstance": process_instance_json(outcome.instance)}])


class StartByKey(EngineRestView):
    """POST process-definition/key/{key}/start: the latest active version, with our start rights."""

    def post(self, request, key: str):
        data = request.data
        business_key = field(data, "businessKey", str, required=False, default="")
        if not business_key:
            raise InvalidInput("businessKey is required here", fields={"businessKey": ["This field is required."]})
        instance = workflows.process_start(
            user=request.user,
            process_key=key,
            business_key=business_key,
            variables=typed.from_camunda(data.get("variables")),
        )
        return Response(process_instance_json(instance))


def _instance_for(request, pk: str) -> ProcessInstance:
    """An instance the caller may read: through the queues of its tasks, or, for a worker account, one that has an
    external task (whose variables its workers get anyway)."""
    process_id = _id(pk, "process instance")
    visible = selectors.tasks_visible_to(user=request.user).values("process_instance_id")
    instance = (
        ProcessInstance.objects.filter(pk=process_id, pk__in=visible).select_related("definition").first()
        if not external.may_work_external_tasks(request.user)
        else _worker_instance(process_id)
    )
    if instance is None:
        raise NotFound(f"process instance {pk} not found", code="process_instance_not_found")
    return instance


def _worker_instance(process_id: int) -> ProcessInstance | None:
    from entitlements.row_scope import system_scope

    with system_scope():  # checked: a worker account; external tasks are reached in the system scope
        return (
            ProcessInstance.objects.filter(pk=process_id)
            .filter(Exists(ExternalTask.objects.filter(process_instance=OuterRef("pk"))))
            .select_related("definition")
            .first()
        )


def _readable_variables(instance: ProcessInstance) -> dict:
    sensitive = workflows.definition_runtime(instance.definition_id).sensitive_names
    return {name: value for name, value in (instance.variables or {}).items() if name not in sensitive}


class ProcessInstanceDetail(EngineRestView):
    def get(self, request, pk: str):
        return Response(process_instance_json(_instance_for(request, pk)))


class ProcessInstanceVariables(EngineRestView):
    def get(self, request, pk: str):
        return Response(typed.to_camunda(_readable_variables(_instance_for(request, pk))))


class ProcessInstanceVariable(EngineRestView):
    def get(self, request, pk: str, name: str):
        variables = _readable_variables(_instance_for(request, pk))
        if name not in variables:
            raise NotFound(f"variable {name} not found", code="variable_not_found")
        return Response(typed.typed(variables[name]))


# --- user tasks -------------------------------------------------------------------------------------------------

MAX_RESULTS = 200


def task_json(task: WorkflowTask) -> dict:
    """Camunda's TaskDto, for a task in one of the caller's queues."""
    return {
        "id": str(task.pk),
        "name": task.name,
        "assignee": task.assignee.username if task.assignee_id else None,
        "owner": task.owner.username if task.owner_id else None,
        "created": task.created_at.isoformat(timespec="milliseconds"),
        "due": task.due_date.isoformat(timespec="milliseconds") if task.due_date else None,
        "followUp": None,
        "delegationState": task.delegation_state or None,
        "description": task.description or None,
        "executionId": str(task.engine_task_id) if task.engine_task_id else None,
        "parentTaskId": None,
        "priority": task.priority,
        "processDefinitionId": None,
        "processInstanceId": str(task.process_instance_id) if task.process_instance_id else None,
        "taskDefinitionKey": task.task_definition_key or None,
        "suspended": False,
        "formKey": None,
        "tenantId": None,
    }


def _number(request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise InvalidInput(f"{name} must be a whole number", fields={name: ["Must be a whole number."]})
    return int(value)


class TaskList(EngineRestView):
    """GET task: the open and claimed tasks of the caller's queues (filters processInstanceId, taskDefinitionKey,
    assignee, candidateGroup; firstResult, maxResults), priority then age."""

    def get(self, request):
        tasks = selectors.tasks_visible_to(user=request.user).filter(status__in=ACTIVE_TASK_STATUSES)
        params = request.query_params
        if "processInstanceId" in params:
            tasks = tasks.filter(process_instance_id=_id(params["processInstanceId"], "process instance"))
        if "taskDefinitionKey" in params:
            tasks = tasks.filter(task_definition_key=params["taskDefinitionKey"])
        if "assignee" in params:
            tasks = tasks.filter(assignee__username=params["assignee"])
        if "candidateGroup" in params:
            tasks = tasks.filter(queue_id=params["candidateGroup"])
        first = _number(request, "firstResult", 0)
        count = min(_number(request, "maxResults", MAX_RESULTS), MAX_RESULTS)
        page = tasks.select_related("assignee", "owner").order_by("-priority", "created_at", "task_id")[
            first : first + count
        ]
        return Response([task_json(task) for task in page])


class TaskClaim(EngineRestView):
    """POST task/{id}/claim: the caller claims it; `userId` may only name the caller (act for another user with
    X-On-Behalf-Of)."""

    def post(self, request, pk: str):
        user_id = field(request.data, "userId", str, required=False)
        if user_id not in (None, request.user.get_username()):
            raise InvalidInput(
                "userId must be the caller: claim for another user with X-On-Behalf-Of",
                fields={"userId": ["Must be the caller."]},
            )
        services.task_claim(user=request.user, task_id=_id(pk, "task"), via_account=via(request))
        return Response(status=204)


class TaskComplete(EngineRestView):
    """POST task/{id}/complete with Camunda's typed variables; the task must be claimed by the caller."""

    def post(self, request, pk: str):
        services.task_complete(
            user=request.user,
            task_id=_id(pk, "task"),
            variables=typed.from_camunda(request.data.get("variables")),
            via_account=via(request),
        )
        return Response(status=204)
