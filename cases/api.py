"""REST API for cases: open one (which starts its workflow), list and read them with routing history."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response

from core.errors import NotFound
from core.replica import replica_reads
from entitlements.detail_reads import detail_read_record, detail_read_refusal_record
from entitlements.models import DetailReadChannel, DetailReadObject
from tasks.api import TaskViewSet, errors, via
from tasks.models import WorkflowTask

from . import selectors, services
from .models import AllegationType, Case, CaseSubject
from .pagination import CaseCursorPagination


class AllegationSerializer(serializers.Serializer):
    type = serializers.CharField()
    description = serializers.CharField()
    date = serializers.DateField(required=False, allow_null=True)


class AllegationInputSerializer(serializers.Serializer):
    """One allegation: its type, what is alleged, and when (optional). A bad part is named in the error, e.g.
    `allegations[0].type`."""

    type = serializers.ChoiceField(choices=AllegationType.choices)
    description = serializers.CharField()
    date = serializers.DateField(required=False, allow_null=True, help_text="YYYY-MM-DD, not in the future.")


@extend_schema_field(AllegationInputSerializer(many=True))
class AllegationsField(serializers.ListField):
    """A list of allegation objects, described in the schema by AllegationInputSerializer."""

    child = serializers.DictField()


class CaseSubjectSerializer(serializers.ModelSerializer):
    """A person of the case, personal fields in plaintext (or the unreadable marker when their key is gone)."""

    id = serializers.IntegerField(source="subject_id", read_only=True)
    date_of_birth = serializers.CharField(read_only=True, allow_null=True, help_text="YYYY-MM-DD")

    class Meta:
        model = CaseSubject
        fields = ["id", "role", "full_name", "email", "phone", "date_of_birth", "notes", "created_at"]
        read_only_fields = fields


class CaseSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="case_id", read_only=True)
    assigned_to = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    allegations = AllegationSerializer(many=True, read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "case_number",
            "title",
            "description",
            "allegations",
            "status",
            "priority",
            "assigned_to",
            "created_at",
            "updated_at",
            "closed_at",
        ]
        read_only_fields = fields


class CaseDetailSerializer(CaseSerializer):
    workflows = serializers.SerializerMethodField()
    current_tasks = serializers.SerializerMethodField()
    subjects = serializers.SerializerMethodField()
    unreadable_fields = serializers.SerializerMethodField(
        help_text="Encrypted fields whose key is not configured: they show a marker instead of their value."
    )

    class Meta(CaseSerializer.Meta):
        fields = [*CaseSerializer.Meta.fields, "subjects", "workflows", "current_tasks", "unreadable_fields"]
        read_only_fields = fields

    def _subjects(self, case) -> list[CaseSubject]:
        if not hasattr(case, "_subjects_read"):
            case._subjects_read = list(case.subjects.order_by("subject_id"))
        return case._subjects_read

    def get_subjects(self, case) -> list[dict]:
        return CaseSubjectSerializer(self._subjects(case), many=True).data

    def get_unreadable_fields(self, case) -> list[str]:
        return selectors.case_unreadable_fields(case, self._subjects(case))

    def get_workflows(self, case) -> list[dict]:
        return [
            {
                "process_instance": m.process_instance_id,
                "workflow_type": m.workflow_type,
                "routing_history": m.routing_history,
            }
            for m in case.workflow_mappings.order_by("mapping_id")
        ]

    def get_current_tasks(self, case) -> list[dict]:
        rows = (
            WorkflowTask.objects.filter(process_instance__case_mapping__case=case, status__in=["OPEN", "CLAIMED"])
            .order_by("task_id")
            .values("task_id", "name", "queue_id", "status", "assignee__username", "due_date")
        )
        return [
            {
                "id": r["task_id"],
                "name": r["name"],
                "queue": r["queue_id"],
                "status": r["status"],
                "assignee": r["assignee__username"],
                "due_date": r["due_date"],
            }
            for r in rows
        ]


class CaseOpenSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=300)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=20_000)
    allegations = AllegationsField(allow_empty=False, max_length=services.MAX_ALLEGATIONS)
    workflow_type = serializers.CharField(max_length=200, required=False, default="onecms_case_handling")
    priority = serializers.IntegerField(min_value=0, max_value=100, required=False, default=50)
    subjects = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        default=list,
        help_text="People of the case: {role: SUBJECT|COMPLAINANT|WITNESS, full_name, email, phone, "
        "date_of_birth, notes}; stored encrypted.",
    )


class CaseViewSet(viewsets.GenericViewSet):
    """Cases visible through the queues of their tasks, or to their assignee and creator. Others are 404."""

    serializer_class = CaseSerializer
    filter_backends = []
    lookup_value_regex = r"[0-9]+"

    pagination_class = CaseCursorPagination

    def get_queryset(self):
        return selectors.cases_visible_to(user=self.request.user).select_related("assigned_to")

    @extend_schema(
        parameters=[
            OpenApiParameter("subject_email", str, description="Cases with a person of this email (exact)."),
            OpenApiParameter("subject_name", str, description="Cases with a person of this name (exact, normalised)."),
        ],
        responses={200: CaseSerializer(many=True), **errors(400, 401, 404)},
        description="The cases visible to the caller, newest first, a page at a time by cursor: follow `next`. "
        "`count` is exact, capped or estimated, as `count_kind` says. A page number other than 1 is a 400 naming "
        "`page`.",
    )
    @replica_reads  # a list tolerates a few seconds of lag (core/replica.py); the caller's own writes excepted
    def list(self, request):
        listing = selectors.case_list(
            user=request.user, condition=selectors.case_list_filter(params=request.query_params)
        )
        self.paginator.count_of = listing.count
        page = self.paginate_queryset(listing.cases)
        return self.get_paginated_response(CaseSerializer(page, many=True).data)

    @extend_schema(request=CaseOpenSerializer, responses={201: CaseDetailSerializer, **errors(400, 401, 403)})
    def create(self, request):
        data = TaskViewSet.validated(CaseOpenSerializer, request)
        case = services.case_open(
            user=request.user,
            title=data["title"],
            description=data["description"],
            allegations=data["allegations"],
            workflow_type=data["workflow_type"],
            priority=data["priority"],
            subjects=data["subjects"],
            via_account=via(request),
        )
        return Response(CaseDetailSerializer(case).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: CaseDetailSerializer, **errors(401, 404)})
    def retrieve(self, request, pk=None):
        try:
            case = selectors.case_for_user(user=request.user, case_id=int(pk))
        except NotFound as error:
            detail_read_refusal_record(
                request=request,
                channel=DetailReadChannel.API,
                object_type=DetailReadObject.CASE,
                object_id=int(pk),
                error=error,
            )
            raise
        detail_read_record(
            request=request,
            channel=DetailReadChannel.API,
            object_type=DetailReadObject.CASE,
            object_id=case.pk,
            object_label=case.case_number,
        )
        return Response(CaseDetailSerializer(case).data)
