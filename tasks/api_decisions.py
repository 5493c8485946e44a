"""API of DMN decisions: deploy a document (each decision the next version of its key), list, evaluate one."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.errors import NotFound
from core.serializers import JSONObjectField

from .api import TaskViewSet, errors
from .bpmn import decisions
from .models import DecisionDefinition


class DecisionSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="decision_id", read_only=True)
    deployed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    hit_policy = serializers.CharField(source="table.hit_policy", read_only=True)
    inputs = serializers.SerializerMethodField()
    outputs = serializers.SerializerMethodField()

    class Meta:
        model = DecisionDefinition
        fields = [
            "id",
            "decision_key",
            "version",
            "name",
            "hit_policy",
            "inputs",
            "outputs",
            "is_active",
            "deployed_by",
            "deployed_at",
        ]
        read_only_fields = fields

    def get_inputs(self, decision) -> list[str]:
        return [i["expression"] for i in decision.table["inputs"]]

    def get_outputs(self, decision) -> list[str]:
        return [o["name"] for o in decision.table["outputs"]]


class DecisionDeploySerializer(serializers.Serializer):
    dmn_xml = serializers.CharField(trim_whitespace=False)


class DecisionEvaluateSerializer(serializers.Serializer):
    variables = JSONObjectField()


class DecisionViewSet(viewsets.GenericViewSet):
    """Deployed DMN decisions, newest version first; business rule tasks evaluate them."""

    serializer_class = DecisionSerializer
    filter_backends = []
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return (
            DecisionDefinition.objects.select_related("deployed_by")
            .defer("dmn_xml")
            .order_by("decision_key", "-version")
        )

    @extend_schema(responses={200: DecisionSerializer(many=True), **errors(401, 404)})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DecisionSerializer(page, many=True).data)

    @extend_schema(
        request=DecisionDeploySerializer,
        responses={
            201: OpenApiResponse(
                DecisionSerializer(many=True), description="Each decision deployed as its next version."
            ),
            200: OpenApiResponse(DecisionSerializer(many=True), description="Unchanged: no version was made."),
            **errors(400, 401, 403, 409),
        },
    )
    def create(self, request):
        data = TaskViewSet.validated(DecisionDeploySerializer, request)
        deployment = decisions.decision_deploy(user=request.user, dmn_xml=data["dmn_xml"])
        return Response(
            DecisionSerializer(deployment.decisions, many=True).data,
            status=status.HTTP_201_CREATED if deployment.created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=DecisionEvaluateSerializer,
        responses={200: OpenApiResponse(description="The matched rules' outputs."), **errors(400, 401, 404)},
    )
    @action(detail=True, methods=["post"])
    def evaluate(self, request, pk=None):
        decision = self.get_queryset().filter(pk=int(pk)).first()
        if decision is None:
            raise NotFound(f"decision {pk} not found", code="decision_not_found")
        data = TaskViewSet.validated(DecisionEvaluateSerializer, request)
        return Response({"result": decisions.decision_evaluate(decision=decision, variables=data["variables"])})
