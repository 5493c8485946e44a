"""/api/workflow/external-tasks/: fetch-and-lock, complete, failure, bpmn-error and extend-lock for worker accounts.

JSON in Camunda's field names (workerId, topics [{topicName, lockDuration}], maxTasks, asyncResponseTimeout), with
plain JSON variables; /engine-rest/ (tasks/engine_rest/) takes Camunda's typed variables.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import InvalidInput

from . import services


def field(data, name: str, kind, *, required: bool = True, default=None):
    """`data[name]` of type `kind`, or InvalidInput naming the field."""
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object", code="invalid_body")
    value = data.get(name, default)
    if value is None:
        if required:
            raise InvalidInput(f"{name} is required", fields={name: ["This field is required."]})
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"{name} has the wrong type", fields={name: [f"Must be {getattr(kind, '__name__', kind)}."]})
    return value


def topic_requests(data) -> list[services.TopicRequest]:
    topics = field(data, "topics", list)
    parsed = []
    for topic in topics:
        variables = field(topic, "variables", list, required=False)
        parsed.append(
            services.TopicRequest(
                topic_name=field(topic, "topicName", str),
                lock_duration_ms=field(topic, "lockDuration", int),
                variables=[str(name) for name in variables] if variables is not None else None,
            )
        )
    return parsed


def locked_item_json(item: services.LockedExternalTask) -> dict:
    return {
        "id": item.external_task_id,
        "topicName": item.topic_name,
        "workerId": item.worker_id,
        "lockExpirationTime": item.lock_expires_at.isoformat(),
        "activityId": item.activity_id,
        "processInstanceId": item.process_instance_id,
        "processDefinitionKey": item.process_definition_key,
        "businessKey": item.business_key,
        "priority": item.priority,
        "retries": item.retries,
        "errorMessage": item.error_message or None,
        "variables": item.variables,
    }


class ExternalTaskView(APIView):
    """Base: the services check the worker permission (403 for other accounts)."""


class FetchAndLockView(ExternalTaskView):
    @extend_schema(request=dict, responses={200: dict})
    def post(self, request):
        data = request.data
        locked = services.external_tasks_fetch_and_lock(
            user=request.user,
            worker_id=field(data, "workerId", str),
            topics=topic_requests(data),
            max_tasks=field(data, "maxTasks", int, required=False, default=1),
            async_response_timeout_ms=field(data, "asyncResponseTimeout", int, required=False, default=0),
        )
        return Response([locked_item_json(item) for item in locked])


class CompleteView(ExternalTaskView):
    @extend_schema(request=dict, responses={204: None})
    def post(self, request, pk: int):
        services.external_task_complete(
            user=request.user,
            external_task_id=pk,
            worker_id=field(request.data, "workerId", str),
            variables=field(request.data, "variables", dict, required=False, default={}),
        )
        return Response(status=204)


class FailureView(ExternalTaskView):
    @extend_schema(request=dict, responses={204: None})
    def post(self, request, pk: int):
        data = request.data
        services.external_task_fail(
            user=request.user,
            external_task_id=pk,
            worker_id=field(data, "workerId", str),
            error_message=field(data, "errorMessage", str, required=False, default=""),
            error_details=field(data, "errorDetails", str, required=False, default=""),
            retries=field(data, "retries", int),
            retry_timeout_ms=field(data, "retryTimeout", int, required=False, default=0),
        )
        return Response(status=204)


class BpmnErrorView(ExternalTaskView):
    @extend_schema(request=dict, responses={422: dict})
    def post(self, request, pk: int):
        services.external_task_bpmn_error(
            user=request.user,
            external_task_id=pk,
            worker_id=field(request.data, "workerId", str),
            error_code=field(request.data, "errorCode", str),
        )
        return Response(status=204)  # not reached while BPMN errors are refused


class ExtendLockView(ExternalTaskView):
    @extend_schema(request=dict, responses={204: None})
    def post(self, request, pk: int):
        services.external_task_extend_lock(
            user=request.user,
            external_task_id=pk,
            worker_id=field(request.data, "workerId", str),
            new_duration_ms=field(request.data, "newDuration", int),
        )
        return Response(status=204)
