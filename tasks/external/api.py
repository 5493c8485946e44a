"""/api/workflow/external-tasks/: fetch-and-lock, complete, failure, bpmn-error and extend-lock for worker accounts.

JSON in Camunda's field names (workerId, topics [{topicName, lockDuration}], maxTasks, asyncResponseTimeout), with
plain JSON variables; /engine-rest/ (tasks/engine_rest/) takes Camunda's typed variables.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import InvalidInput
from core.serializers import JSONObjectField

from ..api import ErrorSerializer, TaskViewSet, errors
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


class TopicSerializer(serializers.Serializer):
    topicName = serializers.CharField(max_length=200)
    lockDuration = serializers.IntegerField(min_value=1, help_text="Milliseconds.")
    variables = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True, help_text="Only these (default: all)."
    )


class FetchAndLockSerializer(serializers.Serializer):
    workerId = serializers.CharField(max_length=services.MAX_WORKER_ID_LENGTH)
    topics = TopicSerializer(many=True)
    maxTasks = serializers.IntegerField(min_value=0, default=1)
    asyncResponseTimeout = serializers.IntegerField(
        min_value=0, default=0, help_text="Milliseconds to wait for an item (long polling); capped by the server."
    )


class LockedExternalTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    topicName = serializers.CharField()
    workerId = serializers.CharField()
    lockExpirationTime = serializers.DateTimeField()
    activityId = serializers.CharField()
    processInstanceId = serializers.IntegerField()
    processDefinitionKey = serializers.CharField()
    businessKey = serializers.CharField()
    priority = serializers.IntegerField()
    retries = serializers.IntegerField(allow_null=True)
    errorMessage = serializers.CharField(allow_null=True)
    variables = JSONObjectField()


class CompleteSerializer(serializers.Serializer):
    workerId = serializers.CharField(max_length=services.MAX_WORKER_ID_LENGTH)
    variables = JSONObjectField(required=False, default=dict)


class FailureSerializer(serializers.Serializer):
    workerId = serializers.CharField(max_length=services.MAX_WORKER_ID_LENGTH)
    errorMessage = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    errorDetails = serializers.CharField(required=False, allow_blank=True, default="", max_length=100_000)
    retries = serializers.IntegerField(min_value=0, max_value=1_000_000)
    retryTimeout = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0, help_text="Milliseconds.")


class BpmnErrorSerializer(serializers.Serializer):
    workerId = serializers.CharField(max_length=services.MAX_WORKER_ID_LENGTH)
    errorCode = serializers.CharField(
        max_length=services.MAX_ERROR_CODE_LENGTH, help_text="Matched against the errorCode of the <bpmn:error>."
    )
    errorMessage = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    variables = JSONObjectField(required=False, default=dict, help_text="Merged where the error is caught.")


class ExtendLockSerializer(serializers.Serializer):
    workerId = serializers.CharField(max_length=services.MAX_WORKER_ID_LENGTH)
    newDuration = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text="Milliseconds from now.")


ITEM_ERRORS = {
    **errors(400, 401, 403),
    404: OpenApiResponse(ErrorSerializer, description="No such external task."),
    409: OpenApiResponse(ErrorSerializer, description="Not active, or locked by another worker."),
}
DONE = {204: OpenApiResponse(description="Done.")}


class FetchAndLockView(APIView):
    """Lock free items of the topics for this worker (a worker account: tasks.work_external_tasks)."""

    @extend_schema(
        request=FetchAndLockSerializer,
        responses={200: LockedExternalTaskSerializer(many=True), **errors(400, 401, 403)},
    )
    def post(self, request):
        data = TaskViewSet.validated(FetchAndLockSerializer, request)
        locked = services.external_tasks_fetch_and_lock(
            user=request.user,
            worker_id=data["workerId"],
            topics=[
                services.TopicRequest(
                    topic_name=topic["topicName"],
                    lock_duration_ms=topic["lockDuration"],
                    variables=topic.get("variables"),
                )
                for topic in data["topics"]
            ],
            max_tasks=data["maxTasks"],
            async_response_timeout_ms=data["asyncResponseTimeout"],
        )
        return Response([locked_item_json(item) for item in locked])


class CompleteView(APIView):
    @extend_schema(request=CompleteSerializer, responses={**DONE, **ITEM_ERRORS})
    def post(self, request, pk: int):
        data = TaskViewSet.validated(CompleteSerializer, request)
        services.external_task_complete(
            user=request.user, external_task_id=pk, worker_id=data["workerId"], variables=data["variables"]
        )
        return Response(status=204)


class FailureView(APIView):
    @extend_schema(request=FailureSerializer, responses={**DONE, **ITEM_ERRORS})
    def post(self, request, pk: int):
        data = TaskViewSet.validated(FailureSerializer, request)
        services.external_task_fail(
            user=request.user,
            external_task_id=pk,
            worker_id=data["workerId"],
            error_message=data["errorMessage"],
            error_details=data["errorDetails"],
            retries=data["retries"],
            retry_timeout_ms=data["retryTimeout"],
        )
        return Response(status=204)


class BpmnErrorView(APIView):
    """Raise a BPMN error at the item the worker holds: the nearest error boundary event catching `errorCode` (on
    the service task, or on a subprocess around it) interrupts it and the instance follows that event's path."""

    @extend_schema(
        request=BpmnErrorSerializer,
        responses={
            **DONE,
            **ITEM_ERRORS,
            422: OpenApiResponse(
                ErrorSerializer,
                description="bpmn_error_not_caught: no error boundary event catches the code; nothing changed, "
                "the worker still holds the item and may report a failure instead.",
            ),
        },
    )
    def post(self, request, pk: int):
        data = TaskViewSet.validated(BpmnErrorSerializer, request)
        services.external_task_bpmn_error(
            user=request.user,
            external_task_id=pk,
            worker_id=data["workerId"],
            error_code=data["errorCode"],
            error_message=data["errorMessage"],
            variables=data["variables"],
        )
        return Response(status=204)


class ExtendLockView(APIView):
    @extend_schema(request=ExtendLockSerializer, responses={**DONE, **ITEM_ERRORS})
    def post(self, request, pk: int):
        data = TaskViewSet.validated(ExtendLockSerializer, request)
        services.external_task_extend_lock(
            user=request.user, external_task_id=pk, worker_id=data["workerId"], new_duration_ms=data["newDuration"]
        )
        return Response(status=204)
