"""REST API for tasks: list, read, create, claim, release, complete, reassign, delegate, escalate, history, routing."""

from __future__ import annotations

from datetime import UTC, datetime

import django_filters
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.errors import NotFound
from core.pagination import KeysetPagination
from core.parsers import JSONParser
from core.replica import replica_reads
from core.serializers import JSONObjectField, JSONObjectListField, RevealedJSONObjectField
from entitlements.detail_reads import detail_read_record, detail_read_refusal_record
from entitlements.models import DetailReadChannel, DetailReadObject, User
from queues.models import EXPRESS_THRESHOLD_MAX, EXPRESS_THRESHOLD_MIN, WorkflowQueue
from queues.services import queue_priority_settings_set

from . import notifications, selectors, services
from .bpmn import messages, workflows
from .forecast import services as forecast_services
from .models import (
    MAX_PRIORITY,
    MIN_PRIORITY,
    Notification,
    ProcessInstance,
    TaskHistory,
    TaskRisk,
    TaskStatus,
    WorkflowDefinition,
    WorkflowTask,
)
from .routing_explanation import routing_decisions


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    request_id = serializers.CharField(
        required=False, help_text="This request's id, also in the X-Request-ID header and the server's logs."
    )


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `fields` names each bad field."),
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated."),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed."),
    404: OpenApiResponse(ErrorSerializer, description="No such task in your queues."),
    409: OpenApiResponse(ErrorSerializer, description="The task's state forbids it."),
}


def errors(*codes):
    return {code: ERRORS[code] for code in codes}


class TaskSerializer(serializers.ModelSerializer):
    """A task in a queue: its state, who holds it, its priority, due date and SLA escalation, and its form."""

    id = serializers.IntegerField(source="task_id", read_only=True)
    queue = serializers.CharField(source="queue_id", read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    process_instance = serializers.IntegerField(source="process_instance_id", read_only=True, allow_null=True)
    engine_task_id = serializers.UUIDField(read_only=True, allow_null=True)
    overdue = serializers.SerializerMethodField()
    breach_probability = serializers.SerializerMethodField(
        help_text="Forecast probability (0-1) that the task misses its due date; null until forecast (tasks/forecast/)."
    )
    expected_completion_at = serializers.SerializerMethodField(
        help_text="Forecast completion time; null until forecast."
    )
    at_risk = serializers.SerializerMethodField(help_text="breach_probability is at least SLA_RISK_THRESHOLD.")
    variables = RevealedJSONObjectField(read_only=True)
    form_fields = JSONObjectListField(read_only=True, help_text="The userTask's declared form fields.")

    class Meta:
        model = WorkflowTask
        fields = [
            "id",
            "name",
            "description",
            "queue",
            "status",
            "priority",
            "assignee",
            "owner",
            "delegation_state",
            "due_date",
            "overdue",
            "breach_probability",
            "expected_completion_at",
            "at_risk",
            "escalation_level",
            "suspended",
            "required_skills",
            "candidate_groups",
            "variables",
            "form_fields",
            "process_instance",
            "engine_task_id",
            "task_definition_key",
            "created_at",
            "claimed_at",
            "completed_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_overdue(self, task) -> bool:
        return bool(task.due_date and task.status in ("OPEN", "CLAIMED") and task.due_date < timezone.now())

    def _risk(self, task) -> TaskRisk | None:
        if task.status not in ("OPEN", "CLAIMED") or self.context.get("without_forecast"):
            return None
        try:
            return task.risk
        except TaskRisk.DoesNotExist:
            return None

    def get_breach_probability(self, task) -> float | None:
        risk = self._risk(task)
        return None if risk is None else round(risk.breach_probability, 4)

    def get_expected_completion_at(self, task) -> datetime | None:
        risk = self._risk(task)
        return None if risk is None else risk.expected_completion_at

    def get_at_risk(self, task) -> bool:
        risk = self._risk(task)
        return risk is not None and risk.breach_probability >= settings.SLA_RISK_THRESHOLD


class TaskHistorySerializer(serializers.ModelSerializer):
    """One event in a task's history: what happened, who did it (and through which account), old and new values."""

    id = serializers.IntegerField(source="event_id", read_only=True)
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    via_account = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    old_values = JSONObjectField(read_only=True)
    new_values = JSONObjectField(read_only=True)
    routing = JSONObjectField(
        read_only=True, allow_null=True, help_text="Why the task went where it went, when this event moved it."
    )

    class Meta:
        model = TaskHistory
        fields = [
            "id",
            "event_type",
            "actor",
            "via_account",
            "old_values",
            "new_values",
            "comment",
            "created_at",
            "routing",
        ]
        read_only_fields = fields


class RoutingDecisionSerializer(serializers.Serializer):
    """One routing decision: the history event that recorded it, and why, in words and as recorded."""

    event_id = serializers.IntegerField()
    event_type = serializers.CharField()
    at = serializers.DateTimeField()
    actor = serializers.CharField(allow_null=True)
    kind = serializers.CharField(
        help_text="push (routing strategy), claim_next, claim, reassign, delegate, resolve or overflow."
    )
    headline = serializers.CharField(help_text="Who got the task, and the rule that chose them.")
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="One line per candidate or queue passed over, and why."
    )
    routing = JSONObjectField(
        help_text="As recorded: strategy, candidates (users or queues) with load, capacity, skills and reason."
    )


class TaskRoutingSerializer(serializers.Serializer):
    """Why the task went where it went: its latest routing decision, and the ones before it, oldest first."""

    id = serializers.IntegerField()
    queue = serializers.CharField()
    status = serializers.CharField()
    assignee = serializers.CharField(allow_null=True)
    latest = RoutingDecisionSerializer(allow_null=True)
    decisions = RoutingDecisionSerializer(many=True)


def reject_nul(value, path="variables"):
    """PostgreSQL stores no NUL character in text or JSON: refuse it as bad input, naming where it is."""
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError(f"{path}: NUL characters are not allowed.")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key, path)
            reject_nul(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            reject_nul(item, f"{path}[{index}]")
    return value


class VariablesField(serializers.DictField):
    """A JSON object of process or task variables."""

    def to_internal_value(self, data):
        return reject_nul(super().to_internal_value(data))


class TaskCreateSerializer(serializers.Serializer):
    queue = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=300)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)
    priority = serializers.IntegerField(min_value=MIN_PRIORITY, max_value=MAX_PRIORITY, default=50)
    due_date = serializers.DateTimeField(required=False, allow_null=True, default=None)
    variables = VariablesField(required=False, default=dict)
    required_skills = serializers.ListField(child=serializers.SlugField(max_length=50), required=False, default=list)


class CompleteSerializer(serializers.Serializer):
    variables = VariablesField(required=False, default=dict)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)


class ReleaseSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)


class ReassignSerializer(serializers.Serializer):
    assignee = serializers.CharField(max_length=150)
    expected_assignee = serializers.CharField(
        max_length=150,
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="Reassign only if the task is still held by this user ('' = unassigned); else 409.",
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)


class DelegateSerializer(serializers.Serializer):
    delegate = serializers.CharField(max_length=150)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)


class EscalateSerializer(serializers.Serializer):
    priority = serializers.IntegerField(
        min_value=MIN_PRIORITY, max_value=MAX_PRIORITY, required=False, allow_null=True, default=None
    )
    queue = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)

    def validate(self, data):
        if data.get("priority") is None and not data.get("queue"):
            raise serializers.ValidationError({"priority": ["Give a priority, a queue, or both."]})
        return data


class ClaimNextSerializer(serializers.Serializer):
    queueNames = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)


class QueueNamesFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """Comma-separated queue names; a NUL byte is bad input, not a database error."""

    def filter(self, queryset, value):
        if value and any("\x00" in name for name in value):
            raise serializers.ValidationError({"queue": ["NUL characters are not allowed."]})
        return super().filter(queryset, value)


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """ISO 8601 with any offset Python accepts; compared in UTC (PostgreSQL refuses offsets beyond ±15:59)."""

    def filter(self, queryset, value):
        if value is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:
                raise serializers.ValidationError({self.field_name: ["Date out of range."]}) from None
        return super().filter(queryset, value)


class TaskFilter(django_filters.FilterSet):
    queue = QueueNamesFilter(field_name="queue_id", help_text="Queue name(s), comma-separated.")
    # distinct=False: the filter joins nothing, and SELECT DISTINCT would compare whole rows (JSON included) of
    # every task in scope before the page is cut.
    status = django_filters.MultipleChoiceFilter(choices=TaskStatus.choices, distinct=False)
    min_priority = django_filters.NumberFilter(field_name="priority", lookup_expr="gte")
    assignee = django_filters.CharFilter(method="filter_assignee", help_text="`me` or a username.")
    due_before = UtcDateTimeFilter(field_name="due_date", lookup_expr="lt")
    overdue = django_filters.BooleanFilter(method="filter_overdue")

    class Meta:
        model = WorkflowTask
        fields = ["queue", "status", "min_priority", "assignee", "due_before", "overdue"]

    def filter_assignee(self, queryset, name, value):
        if "\x00" in value:
            raise serializers.ValidationError({"assignee": ["NUL characters are not allowed."]})
        if value == "me":
            return queryset.filter(assignee=self.request.user)
        # A subquery, not a join: the list's probes (core/pagination.py) take filters on the task table alone.
        return queryset.filter(assignee__in=User.objects.filter(username=value).values("pk"))

    def filter_overdue(self, queryset, name, value):
        overdue = Q(status__in=["OPEN", "CLAIMED"], due_date__lt=timezone.now())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)


def via(request):
    return getattr(request, "via_account", None)


def task_read(request, task_id: int):
    """The task (live or archived) for a detail read, which goes to the access audit; a refusal does too."""
    try:
        task = selectors.task_or_archived_for_user(user=request.user, task_id=task_id)
    except NotFound as error:
        detail_read_refusal_record(
            request=request,
            channel=DetailReadChannel.API,
            object_type=DetailReadObject.TASK,
            object_id=task_id,
            error=error,
        )
        raise
    detail_read_record(
        request=request,
        channel=DetailReadChannel.API,
        object_type=DetailReadObject.TASK,
        object_id=task.pk,
        object_label=selectors.task_business_key(task=task),
    )
    return task


def task_response(task, *, http_status=status.HTTP_200_OK, with_forecast: bool = True) -> Response:
    context = {} if with_forecast else {"without_forecast": True}
    return Response(TaskSerializer(task, context=context).data, status=http_status)


# The list's default order, which idx_workflow_tasks_queue_status_priority serves within each queue and status.
TASK_LIST_ORDERING = ["-priority", "created_at", "task_id"]


class TaskViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Tasks in the caller's queues. A task outside them is 404.

    The list pages by cursor (core/pagination.py). In its default order each page is merged from one index probe
    per queue and status, so page 1 and page 1,000 read about the same; other orders (any of `ordering_fields`,
    none nullable: a cursor cannot stand on a missing value) read each queue in that order without an index.
    """

    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    pagination_class = KeysetPagination
    ordering_fields = ["priority", "created_at", "task_id"]
    ordering = TASK_LIST_ORDERING
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        # The page's users and forecasts are joined to its rows: the rows are fetched by the keys the index probes
        # chose (core/pagination.py), so each join is a primary-key lookup per row of the page, not of the scope.
        self.listed_queue_names = selectors.task_list_queue_names(user=self.request.user)
        queryset = selectors.tasks_listed_for(user=self.request.user, queue_names=self.listed_queue_names)
        return queryset.select_related("assignee", "owner", "risk")

    def keyset_partitions(self, request, ordering):
        """The queues and statuses whose index ranges a page of the default order is merged from."""
        if ordering != TASK_LIST_ORDERING:
            return None
        queues = [name.strip() for raw in request.query_params.getlist("queue") for name in raw.split(",")]
        queues = [name for name in queues if name] or self.listed_queue_names
        statuses = request.query_params.getlist("status") or list(TaskStatus.values)
        return {"queue": queues, "status": statuses}

    @extend_schema(responses={200: TaskSerializer(many=True), **errors(400, 401, 404)})
    @replica_reads  # a list tolerates a few seconds of lag (core/replica.py); the caller's own writes excepted
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: TaskSerializer, **errors(401, 404)})
    def retrieve(self, request, pk=None):
        return task_response(task_read(request, int(pk)))

    @extend_schema(request=TaskCreateSerializer, responses={201: TaskSerializer, **errors(400, 401, 409)})
    def create(self, request):
        data = self.validated(TaskCreateSerializer, request)
        task = services.task_create(
            user=request.user,
            via_account=via(request),
            queue_name=data["queue"],
            name=data["name"],
            description=data["description"],
            priority=data["priority"],
            due_date=data["due_date"],
            variables=data["variables"],
            required_skills=data["required_skills"],
        )
        return task_response(task, http_status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: TaskHistorySerializer(many=True), **errors(401, 404)})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request, pk=None):
        events = selectors.task_history_of(task=task_read(request, int(pk)))
        return Response(TaskHistorySerializer(events, many=True).data)

    @extend_schema(responses={200: TaskRoutingSerializer, **errors(401, 404)})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def routing(self, request, pk=None):
        """Why the task went where it went: each push, claim-next or assignment by hand, with what was passed over."""
        task = task_read(request, int(pk))
        decisions = routing_decisions(selectors.task_routing_of(task=task))
        body = {
            "id": task.pk,
            "queue": task.queue_id,
            "status": task.status,
            "assignee": task.assignee.get_username() if task.assignee_id else None,
            "latest": decisions[-1] if decisions else None,
            "decisions": decisions,
        }
        return Response(TaskRoutingSerializer(body).data)

    @extend_schema(request=None, responses={200: TaskSerializer, **errors(401, 404, 409)})
    @action(detail=True, methods=["post"])
    def forecast(self, request, pk=None):
        """Forecast this task's SLA risk now (the beat job does every five minutes) and return the task."""
        return task_response(forecast_services.task_forecast_refresh(user=request.user, task_id=int(pk)))

    @extend_schema(
        request=ClaimNextSerializer,
        parameters=[
            OpenApiParameter("queueNames", OpenApiTypes.STR, description="Queue names, repeated or comma-separated.")
        ],
        responses={200: TaskSerializer, 204: OpenApiResponse(description="Nothing to claim."), **errors(400, 401)},
        description="Claim the best open task of the caller's queues. The answer leaves the forecast fields "
        "(breach_probability, expected_completion_at) empty and at_risk false: the claim is kept to one statement; "
        "GET the task for its forecast.",
    )
    @action(detail=False, methods=["post"], url_path="claim/next")
    def claim_next(self, request):
        names = []
        for raw in request.query_params.getlist("queueNames"):
            names.extend(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(request.data, dict) and request.data:
            names.extend(self.validated(ClaimNextSerializer, request)["queueNames"])
        if names:  # the common call names no queue: spare it the validation
            checked = ClaimNextSerializer(data={"queueNames": names})
            checked.is_valid(raise_exception=True)
            names = checked.validated_data["queueNames"]
        task = services.task_claim_next(user=request.user, queue_names=names or None, via_account=via(request))
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        # The claim path stays two statements (token, claim): its answer leaves out the forecast (GET the task).
        return task_response(task, with_forecast=False)

    @extend_schema(request=None, responses={200: TaskSerializer, **errors(401, 404, 409)})
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        return task_response(services.task_claim(user=request.user, task_id=int(pk), via_account=via(request)))

    @extend_schema(request=ReleaseSerializer, responses={200: TaskSerializer, **errors(400, 401, 404, 409)})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        data = self.validated(ReleaseSerializer, request)
        return task_response(
            services.task_release(user=request.user, task_id=int(pk), comment=data["comment"], via_account=via(request))
        )

    @extend_schema(request=CompleteSerializer, responses={200: TaskSerializer, **errors(400, 401, 404, 409)})
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        data = self.validated(CompleteSerializer, request)
        task = services.task_complete(
            user=request.user,
            task_id=int(pk),
            variables=data["variables"],
            comment=data["comment"],
            via_account=via(request),
        )
        return task_response(task)

    @extend_schema(request=ReassignSerializer, responses={200: TaskSerializer, **errors(400, 401, 404, 409)})
    @action(detail=True, methods=["post"])
    def reassign(self, request, pk=None):
        data = self.validated(ReassignSerializer, request)
        task = services.task_reassign(
            user=request.user,
            task_id=int(pk),
            assignee=data["assignee"],
            expected_assignee=data["expected_assignee"],
            comment=data["comment"],
            via_account=via(request),
        )
        return task_response(task)

    @extend_schema(request=DelegateSerializer, responses={200: TaskSerializer, **errors(400, 401, 404, 409)})
    @action(detail=True, methods=["post"])
    def delegate(self, request, pk=None):
        data = self.validated(DelegateSerializer, request)
        task = services.task_delegate(
            user=request.user,
            task_id=int(pk),
            delegate=data["delegate"],
            comment=data["comment"],
            via_account=via(request),
        )
        return task_response(task)

    @extend_schema(request=CompleteSerializer, responses={200: TaskSerializer, **errors(400, 401, 404, 409)})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        data = self.validated(CompleteSerializer, request)
        task = services.task_resolve(
            user=request.user,
            task_id=int(pk),
            variables=data["variables"],
            comment=data["comment"],
            via_account=via(request),
        )
        return task_response(task)

    @extend_schema(request=EscalateSerializer, responses={200: TaskSerializer, **errors(400, 401, 404, 409)})
    @action(detail=True, methods=["post"])
    def escalate(self, request, pk=None):
        data = self.validated(EscalateSerializer, request)
        task = services.task_escalate(
            user=request.user,
            task_id=int(pk),
            priority=data["priority"],
            queue_name=data["queue"] or None,
            reason=data["reason"],
            via_account=via(request),
        )
        return task_response(task)

    @staticmethod
    def validated(serializer_class, request) -> dict:
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise serializers.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class QueueSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="queue_id", read_only=True)
    department = serializers.SlugRelatedField(slug_field="dept_code", read_only=True)
    open = serializers.IntegerField(source="open_count", read_only=True)
    claimed = serializers.IntegerField(source="claimed_count", read_only=True)
    escalated = serializers.IntegerField(source="escalated_count", read_only=True)
    overdue = serializers.IntegerField(source="overdue_count", read_only=True)
    due_within_24h = serializers.IntegerField(source="due_soon_count", read_only=True)
    oldest_open_age_seconds = serializers.FloatField(read_only=True, allow_null=True)
    utilisation = serializers.FloatField(read_only=True, allow_null=True)
    capabilities = serializers.ListField(child=serializers.CharField(), read_only=True)
    figures_as_of = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When open, claimed, escalated, overdue, due_within_24h and the oldest open age were counted "
        "(the dashboards' refresh); current_load is current. Null: not counted yet.",
    )

    class Meta:
        model = WorkflowQueue
        fields = [
            "id",
            "queue_name",
            "display_name",
            "queue_type",
            "department",
            "routing_strategy",
            "assignment_mode",
            "max_capacity",
            "current_load",
            "utilisation",
            "intake_paused",
            "sla_default_hours",
            "priority_weight",
            "aging_enabled",
            "express_threshold",
            "express_share_percent",
            "open",
            "claimed",
            "escalated",
            "overdue",
            "due_within_24h",
            "oldest_open_age_seconds",
            "figures_as_of",
            "capabilities",
        ]
        read_only_fields = fields


class QueuePrioritySettingsSerializer(serializers.Serializer):
    """A queue's aging and express lane, as a supervisor sets them; any subset."""

    aging_enabled = serializers.BooleanField(
        required=False, help_text="Open tasks' effective priority rises with their wait and SLA breach risk."
    )
    priority_weight = serializers.IntegerField(
        required=False, min_value=0, max_value=2**31 - 1, help_text="Weight of the aging points (and of routing)."
    )
    express_threshold = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=EXPRESS_THRESHOLD_MIN,
        max_value=EXPRESS_THRESHOLD_MAX,
        help_text="Tasks of at least this effective priority are claimed first, within the share; null: no lane.",
    )
    express_share_percent = serializers.IntegerField(
        required=False, min_value=1, max_value=100, help_text="Most percent of claims the express lane takes."
    )


class QueueViewSet(viewsets.GenericViewSet):
    """Queues the caller may view, with load versus capacity and SLA figures; supervisors set their claim order."""

    serializer_class = QueueSerializer
    pagination_class = None
    filter_backends = []
    lookup_field = "queue_name"
    lookup_value_regex = "[-a-zA-Z0-9_]+"

    def get_queryset(self):
        return WorkflowQueue.objects.none()

    @extend_schema(responses={200: QueueSerializer(many=True), **errors(401)})
    def list(self, request):
        return Response(QueueSerializer(selectors.queue_dashboard(user=request.user), many=True).data)

    @extend_schema(
        request=QueuePrioritySettingsSerializer,
        responses={200: QueuePrioritySettingsSerializer, **errors(400, 401, 404)},
    )
    def partial_update(self, request, queue_name=None):
        """Set the queue's aging and express lane (supervisors of the queue)."""
        data = TaskViewSet.validated(QueuePrioritySettingsSerializer, request)
        queue = queue_priority_settings_set(user=request.user, queue_name=queue_name, **data)
        return Response(QueuePrioritySettingsSerializer(queue).data)


class DefinitionSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="workflow_id", read_only=True)
    deployed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    queues = serializers.SerializerMethodField()
    sla_config = JSONObjectField(read_only=True)

    class Meta:
        model = WorkflowDefinition
        fields = [
            "id",
            "process_key",
            "version",
            "name",
            "sla_config",
            "is_active",
            "deployed_by",
            "deployed_at",
            "queues",
        ]
        read_only_fields = fields

    def get_queues(self, definition) -> list[str]:
        tasks = (definition.engine_spec or {}).get("user_tasks", {})
        return sorted({t["queue_name"] for t in tasks.values()})


# OpenAPI 3.0 (JSON Schema draft 4): exclusiveMinimum is a flag on minimum, and there is no propertyNames.
_HOURS = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": workflows.MAX_SLA_HOURS}


@extend_schema_field(
    {
        "type": "object",
        "description": "Business hours to complete tasks: per userTask id (`tasks`), or by priority threshold "
        "(`priority_hours`, keys 0-100; the highest threshold at or below a task's priority wins and "
        "comes before `tasks`).",
        "properties": {
            "tasks": {"type": "object", "additionalProperties": _HOURS},
            "priority_hours": {"type": "object", "additionalProperties": _HOURS},
        },
        "additionalProperties": False,
    }
)
class SlaConfigField(VariablesField):
    """A definition's SLA settings; the service validates them (tasks.bpmn.workflows.sla_config_validate)."""


class DeploySerializer(serializers.Serializer):
    bpmn_xml = serializers.CharField(trim_whitespace=False)
    sla_config = SlaConfigField(required=False, default=dict)


class ProcessSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="process_instance_id", read_only=True)
    process_key = serializers.CharField(source="definition.process_key", read_only=True)
    version = serializers.IntegerField(source="definition.version", read_only=True)
    tasks = serializers.SerializerMethodField()
    variables = RevealedJSONObjectField(read_only=True)

    class Meta:
        model = ProcessInstance
        fields = [
            "id",
            "process_key",
            "version",
            "business_key",
            "variables",
            "status",
            "sla_due_date",
            "started_at",
            "ended_at",
            "tasks",
        ]
        read_only_fields = fields

    def get_tasks(self, instance) -> list[dict]:
        rows = instance.tasks.order_by("task_id").values("task_id", "name", "queue_id", "status")
        return [{"id": r["task_id"], "name": r["name"], "queue": r["queue_id"], "status": r["status"]} for r in rows]


class ProcessStartSerializer(serializers.Serializer):
    process_key = serializers.CharField(max_length=200)
    business_key = serializers.CharField(max_length=200)
    variables = VariablesField(required=False, default=dict)


class ProcessLifecycleSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)


class ProcessMigrateSerializer(serializers.Serializer):
    target_version = serializers.IntegerField(min_value=1, help_text="The version of the same process key to move to.")
    activity_mapping = serializers.DictField(
        child=serializers.CharField(max_length=200),
        required=False,
        default=dict,
        help_text="Element ids of the current version -> their counterparts on the target (unnamed ids stay as they are).",
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)


class ProcessesMigrateSerializer(ProcessMigrateSerializer):
    process_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=1000)


class MigrationReportSerializer(serializers.Serializer):
    migrated = serializers.ListField(child=serializers.IntegerField())
    refused = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Process id -> the element ids without a counterpart (or the error code).",
    )


PROCESS_LIFECYCLE_ERRORS = {
    **errors(400, 401),
    404: OpenApiResponse(ErrorSerializer, description="No such process instance with a task in a queue you supervise."),
    409: OpenApiResponse(ErrorSerializer, description="The instance's state forbids it (`process_not_running`, ...)."),
}


class DefinitionViewSet(viewsets.GenericViewSet):
    """Deployed BPMN definitions, newest version first."""

    serializer_class = DefinitionSerializer
    filter_backends = []

    def get_queryset(self):
        return WorkflowDefinition.objects.select_related("deployed_by").order_by("process_key", "-version")

    @extend_schema(responses={200: DefinitionSerializer(many=True), **errors(401, 404)})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DefinitionSerializer(page, many=True).data)

    @extend_schema(
        request=DeploySerializer,
        responses={
            201: OpenApiResponse(DefinitionSerializer, description="Deployed as the next version."),
            200: OpenApiResponse(
                DefinitionSerializer,
                description="Unchanged: the version in use already has this model and SLA configuration; "
                "no version was made.",
            ),
            **errors(400, 401, 403, 409),
        },
    )
    def create(self, request):
        data = TaskViewSet.validated(DeploySerializer, request)
        deployment = workflows.definition_deploy_if_changed(
            user=request.user, bpmn_xml=data["bpmn_xml"], sla_config=data["sla_config"]
        )
        return Response(
            DefinitionSerializer(deployment.definition).data,
            status=status.HTTP_201_CREATED if deployment.created else status.HTTP_200_OK,
        )


class ProcessViewSet(viewsets.GenericViewSet):
    """Process instances: start one, read one (visible through the queues of its tasks)."""

    serializer_class = ProcessSerializer
    filter_backends = []
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        visible = selectors.tasks_visible_to(user=self.request.user).values("process_instance_id")
        return ProcessInstance.objects.filter(pk__in=visible).select_related("definition")

    @extend_schema(request=ProcessStartSerializer, responses={201: ProcessSerializer, **errors(400, 401, 403)})
    def create(self, request):
        data = TaskViewSet.validated(ProcessStartSerializer, request)
        instance = workflows.process_start(
            user=request.user,
            process_key=data["process_key"],
            business_key=data["business_key"],
            variables=data["variables"],
            via_account=via(request),
        )
        return Response(ProcessSerializer(instance).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ProcessSerializer, **errors(401, 404)})
    def retrieve(self, request, pk=None):
        instance = self.get_queryset().filter(pk=int(pk)).first()
        if instance is None:
            raise NotFound(f"process {pk} not found", code="process_not_found")
        return Response(ProcessSerializer(instance).data)

    def lifecycle(self, request, pk, service):
        """Suspend, resume or cancel: supervisors of a queue the instance has tasks in; anyone else gets 404."""
        data = TaskViewSet.validated(ProcessLifecycleSerializer, request) if request.data else {"reason": ""}
        instance = service(
            user=request.user, process_instance_id=int(pk), reason=data["reason"], via_account=via(request)
        )
        return Response(ProcessSerializer(instance).data)

    @extend_schema(request=ProcessLifecycleSerializer, responses={200: ProcessSerializer, **PROCESS_LIFECYCLE_ERRORS})
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        """Suspend the instance: its tasks can be neither claimed nor completed, its timers wait (409 if not
        running)."""
        return self.lifecycle(request, pk, workflows.process_suspend)

    @extend_schema(request=ProcessLifecycleSerializer, responses={200: ProcessSerializer, **PROCESS_LIFECYCLE_ERRORS})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Resume a suspended instance (409 `process_not_suspended` otherwise)."""
        return self.lifecycle(request, pk, workflows.process_resume)

    @extend_schema(request=ProcessLifecycleSerializer, responses={200: ProcessSerializer, **PROCESS_LIFECYCLE_ERRORS})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel the instance and close its open tasks (409 `process_ended` once it has ended)."""
        return self.lifecycle(request, pk, workflows.process_cancel)

    @extend_schema(request=ProcessMigrateSerializer, responses={200: ProcessSerializer, **PROCESS_LIFECYCLE_ERRORS})
    @action(detail=True, methods=["post"])
    def migrate(self, request, pk=None):
        """Move the instance to another version of its process key (409 `migration_refused` with
        `fields.unmapped_element_ids` when it is at an element without a counterpart; it then stays as it was)."""
        data = TaskViewSet.validated(ProcessMigrateSerializer, request)
        instance = workflows.process_migrate(
            user=request.user,
            process_instance_id=int(pk),
            target_version=data["target_version"],
            activity_mapping=data["activity_mapping"],
            reason=data["reason"],
            via_account=via(request),
        )
        return Response(ProcessSerializer(instance).data)

    @extend_schema(request=ProcessesMigrateSerializer, responses={200: MigrationReportSerializer, **errors(400, 401)})
    @action(detail=False, methods=["post"], url_path="migrate", parser_classes=[JSONParser])  # ids: a JSON list
    def migrate_many(self, request):
        """Move each of `process_ids` to `target_version`; refused or unreachable ones are reported, not moved."""
        data = TaskViewSet.validated(ProcessesMigrateSerializer, request)
        report = workflows.processes_migrate(
            user=request.user,
            process_instance_ids=data["process_ids"],
            target_version=data["target_version"],
            activity_mapping=data["activity_mapping"],
            reason=data["reason"],
            via_account=via(request),
        )
        return Response(MigrationReportSerializer({"migrated": report.migrated, "refused": report.refused}).data)


class MessageSerializer(serializers.Serializer):
    message_name = serializers.CharField(
        max_length=messages.MAX_MESSAGE_NAME_LENGTH, help_text="The bpmn:message's name."
    )
    business_key = serializers.CharField(
        max_length=200,
        required=False,
        allow_null=True,
        default=None,
        help_text="Only the instance with this business key; the new instance's, when the message starts one.",
    )
    correlation_keys = VariablesField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Process variables the waiting instance must hold with these values.",
    )
    variables = VariablesField(required=False, default=dict, help_text="Merged into the process variables.")


class MessageResultSerializer(serializers.Serializer):
    started = serializers.BooleanField(help_text="True: the message started this instance (201).")
    process = ProcessSerializer()


class MessageViewSet(viewsets.GenericViewSet):
    """Messages to process instances: delivered to the one waiting for it, or starting a process."""

    serializer_class = MessageSerializer
    filter_backends = []
    pagination_class = None

    def get_queryset(self):
        return ProcessInstance.objects.none()

    @extend_schema(
        request=MessageSerializer,
        responses={
            200: OpenApiResponse(MessageResultSerializer, description="A waiting instance caught the message."),
            201: OpenApiResponse(MessageResultSerializer, description="The message started a new instance."),
            **errors(400, 401, 403),
            404: OpenApiResponse(
                ErrorSerializer,
                description="`message_not_correlated`: no running instance you may act on waits for it, and no "
                "process starts with it.",
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="`message_ambiguous`: several instances wait for it (narrow with business_key or "
                "correlation_keys), or several processes start with it.",
            ),
        },
    )
    def create(self, request):
        data = TaskViewSet.validated(MessageSerializer, request)
        outcome = messages.message_correlate(
            user=request.user,
            message_name=data["message_name"],
            business_key=data["business_key"],
            correlation_keys=data["correlation_keys"],
            variables=data["variables"],
            via_account=via(request),
        )
        return Response(
            {"started": outcome.started, "process": ProcessSerializer(outcome.instance).data},
            status=status.HTTP_201_CREATED if outcome.started else status.HTTP_200_OK,
        )


class SignalSerializer(serializers.Serializer):
    signal_name = serializers.CharField(
        max_length=messages.MAX_MESSAGE_NAME_LENGTH, help_text="The bpmn:signal's name."
    )
    variables = VariablesField(
        required=False, default=dict, help_text="Merged into each catching instance's variables."
    )
    business_key = serializers.CharField(
        required=False,
        max_length=200,
        help_text="The business key of the instances the signal starts (signal start events); default: generated.",
    )


class SignalResultSerializer(serializers.Serializer):
    process_instances = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="The instances the signal reached: the waiting ones that caught it, in id order, then those it "
        "started (none is not an error).",
    )


class SignalViewSet(viewsets.GenericViewSet):
    """Signals: broadcast to every running instance waiting for one that the caller works or supervises, and start
    every latest process with a signal start event for it that the caller may start."""

    serializer_class = SignalSerializer
    filter_backends = []
    pagination_class = None

    def get_queryset(self):
        return ProcessInstance.objects.none()

    @extend_schema(request=SignalSerializer, responses={200: SignalResultSerializer, **errors(400, 401)})
    def create(self, request):
        data = TaskViewSet.validated(SignalSerializer, request)
        reached = messages.signal_broadcast(
            user=request.user,
            signal_name=data["signal_name"],
            variables=data["variables"],
            business_key=data.get("business_key"),
            via_account=via(request),
        )
        return Response({"process_instances": [instance.pk for instance in reached]})


class NotificationSerializer(serializers.ModelSerializer):
    """One of the caller's in-app notifications: what happened, where to look, and whether it was read."""

    id = serializers.IntegerField(source="notification_id", read_only=True)
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "text", "link", "created_at", "read", "read_at"]
        read_only_fields = fields

    def get_read(self, notification) -> bool:
        return notification.read_at is not None


class NotificationViewSet(viewsets.GenericViewSet):
    """The caller's own notifications (a task pushed to them, their task escalated or at risk, SLA breaches and
    full queues they supervise), the newest 100 first; another user's is 404. Kept for a few days (README)."""

    serializer_class = NotificationSerializer
    filter_backends = []
    # Short-lived and few: the newest LIST_LIMIT in one answer, no pages.
    pagination_class = None
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return notifications.notifications_for(user=self.request.user)

    @extend_schema(
        parameters=[OpenApiParameter("unread", bool, description="Only the unread ones.")],
        responses={200: NotificationSerializer(many=True), **errors(401)},
    )
    def list(self, request):
        queryset = self.get_queryset()
        if request.query_params.get("unread", "").lower() in ("1", "true"):
            queryset = queryset.filter(read_at__isnull=True)
        return Response(NotificationSerializer(queryset[: notifications.LIST_LIMIT], many=True).data)

    @extend_schema(request=None, responses={200: NotificationSerializer, **errors(401, 404)})
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        """Mark the notification read (again: no change)."""
        notification = notifications.notification_mark_read(user=request.user, notification_id=int(pk))
        return Response(NotificationSerializer(notification).data)
