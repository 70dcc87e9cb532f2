"""REST door for projects: translate, call the service, render."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from simlab.accounts.authentication import actor_from_request
from simlab.projects import selectors, services
from simlab.projects.models import Project
from simlab.web.api_fields import ObjectIdField, StrictSerializer


class ProjectSerializer(serializers.ModelSerializer[Project]):
    class Meta:
        model = Project
        fields = ["id", "organization", "name", "description", "created_at", "archived_at"]
        read_only_fields = ["archived_at"]


class ProjectCreateSerializer(StrictSerializer):
    organization = ObjectIdField()
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class ProjectViewSet(viewsets.GenericViewSet[Project]):
    lookup_value_converter = "id"  # simlab.core.ids: ASCII digits, 64-bit
    serializer_class = ProjectSerializer
    queryset = Project.objects.none()  # rows come from the selector; this types the schema
    filterset_fields = ["organization"]
    ordering_fields = ["name", "created_at", "id"]

    def get_queryset(self) -> Any:
        return selectors.project_list(actor_from_request(self.request))

    @extend_schema(operation_id="projects_list")
    def list(self, request: Request) -> Response:
        qs = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(ProjectSerializer(page, many=True).data)

    @extend_schema(
        operation_id="projects_create",
        request=ProjectCreateSerializer,
        responses={201: ProjectSerializer},
    )
    def create(self, request: Request) -> Response:
        data = ProjectCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(
            actor_from_request(request),
            organization_id=data.validated_data["organization"],
            name=data.validated_data["name"],
            description=data.validated_data["description"],
        )
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="projects_delete", responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.project_delete(actor_from_request(request), int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="projects_retrieve")
    def retrieve(self, request: Request, pk: str) -> Response:
        project = selectors.project_get(actor_from_request(request), int(pk))
        return Response(ProjectSerializer(project).data)

    @extend_schema(
        operation_id="projects_update",
        request=ProjectUpdateSerializer,
        responses={200: ProjectSerializer},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        data = ProjectUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_update(
            actor_from_request(request), int(pk), **data.validated_data
        )
        return Response(ProjectSerializer(project).data)
