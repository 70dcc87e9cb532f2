"""REST doors for surrogate models: translate, call the service, render."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from simlab.accounts.authentication import actor_from_request
from simlab.analytics import selectors, services
from simlab.analytics.models import ModelVersion, SurrogateModel
from simlab.web.api_fields import StrictSerializer


class SurrogateModelSerializer(serializers.ModelSerializer[SurrogateModel]):
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = SurrogateModel
        fields = ["id", "project", "name", "algorithm", "inputs", "target", "aliases", "created_at"]

    def get_aliases(self, obj: SurrogateModel) -> dict[str, int]:
        return dict(obj.aliases.order_by("name").values_list("name", "version_id"))


class ModelVersionSerializer(serializers.ModelSerializer[ModelVersion]):
    aliases = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField(
        help_text="This version, its model, and where the model predicts and suggests runs "
        "(by model id, not version id)."
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "project",
            "model",
            "number",
            "status",
            "source",
            "level",
            "kind",
            "metrics",
            "fingerprint",
            "library_versions",
            "error_message",
            "aliases",
            "links",
            "created_at",
            "finished_at",
        ]

    def get_links(self, obj: ModelVersion) -> dict[str, str]:
        model = obj.model_id
        return {
            "self": reverse("surrogate-version-detail", args=[obj.pk]),
            "model": reverse("surrogate-detail", args=[model]),
            "predict": reverse("surrogate-predict", args=[model]),
            "suggest": reverse("surrogate-suggest", args=[model]),
        }

    def get_aliases(self, obj: ModelVersion) -> list[str]:
        known: dict[int, list[str]] | None = self.context.get("aliases")
        if known is not None:
            return known.get(obj.pk, [])
        return list(obj.aliases.order_by("name").values_list("name", flat=True))


def _versions_data(versions: list[ModelVersion]) -> Any:
    """A page of versions, their aliases read in one query."""
    context = {"aliases": selectors.aliases_of(versions)}
    return ModelVersionSerializer(versions, many=True, context=context).data


class TrainSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, help_text="The model; created on first use.")
    target = serializers.CharField(max_length=200, help_text="The metric to predict.")
    inputs = serializers.ListField(child=serializers.CharField(max_length=200), max_length=10)
    sweep_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=100
    )
    algorithm = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    tag = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    level = serializers.FloatField(required=False, default=0.9)
    alias = serializers.CharField(max_length=64, required=False, default=services.CURRENT)


class AliasSerializer(StrictSerializer):
    alias = serializers.CharField(max_length=64)


class _Which(StrictSerializer):
    alias = serializers.CharField(max_length=64, required=False)
    version = serializers.IntegerField(min_value=1, required=False)


class PredictSerializer(_Which):
    points = serializers.JSONField(help_text="[{parameter: value, ...}, ...] (1 to 10 000).")


class SuggestSerializer(_Which):
    k = serializers.IntegerField(min_value=1, max_value=services.MAX_SUGGEST)
    axes = serializers.JSONField(required=False, help_text="{parameter: [values]}: the grid.")
    candidates = serializers.JSONField(required=False, help_text="Or the points to choose from.")
    target = serializers.FloatField(required=False, help_text="Steer toward this metric value.")


class VersionCursor(CursorPagination):
    ordering = ("-id",)
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


_PAGE = [OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)]
_VERSION_PAGE = inline_serializer(
    "ModelVersionPage",
    {
        "next": serializers.CharField(allow_null=True),
        "previous": serializers.CharField(allow_null=True),
        "results": ModelVersionSerializer(many=True),
    },
)


def _version_page(view: Any, request: Request, qs: Any, ordering: str) -> Response:
    paginator = VersionCursor()
    paginator.ordering = (ordering,)
    page: list[ModelVersion] = paginator.paginate_queryset(qs, request, view=view) or []
    return paginator.get_paginated_response(_versions_data(list(page)))


class ProjectSurrogateViewSet(viewsets.GenericViewSet[SurrogateModel]):
    serializer_class = SurrogateModelSerializer
    queryset = SurrogateModel.objects.none()

    @extend_schema(operation_id="surrogates_list")
    def list(self, request: Request, project_pk: str) -> Response:
        qs = selectors.model_list(actor_from_request(request), project_id=int(project_pk))
        page = self.paginate_queryset(qs.prefetch_related("aliases"))
        return self.get_paginated_response(SurrogateModelSerializer(page, many=True).data)

    @extend_schema(
        operation_id="surrogates_train",
        request=TrainSerializer,
        responses={202: ModelVersionSerializer},
    )
    def create(self, request: Request, project_pk: str) -> Response:
        """Queue the training of a new version (of the model `name`, created on first use)."""
        body = TrainSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = services.surrogate_train(
            actor_from_request(request), project_id=int(project_pk), **body.validated_data
        )
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="surrogate_versions_project_list",
        parameters=_PAGE,
        responses={200: _VERSION_PAGE},
    )
    def versions(self, request: Request, project_pk: str) -> Response:
        """Every version of every model in the project, newest first, a page at a time."""
        qs = selectors.version_list(actor_from_request(request), project_id=int(project_pk))
        return _version_page(self, request, qs, "-id")


class SurrogateViewSet(viewsets.GenericViewSet[SurrogateModel]):
    lookup_value_converter = "id"
    serializer_class = SurrogateModelSerializer
    queryset = SurrogateModel.objects.none()

    @extend_schema(operation_id="surrogates_retrieve")
    def retrieve(self, request: Request, pk: str) -> Response:
        model = selectors.model_get(actor_from_request(request), int(pk))
        return Response(SurrogateModelSerializer(model).data)

    @extend_schema(
        operation_id="surrogates_versions",
        parameters=_PAGE,
        responses={200: _VERSION_PAGE},
    )
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str) -> Response:
        qs = selectors.version_list(actor_from_request(request), model_id=int(pk))
        return _version_page(self, request, qs, "-number")

    @extend_schema(
        operation_id="surrogates_predict",
        request=PredictSerializer,
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["post"])
    def predict(self, request: Request, pk: str) -> Response:
        """Mean and interval at one point or a batch (by `alias`, `current` by default, or
        `version`)."""
        body = PredictSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        return Response(
            services.surrogate_predict(
                actor_from_request(request),
                model_id=int(pk),
                points=data["points"],
                alias=data.get("alias"),
                version_id=data.get("version"),
            )
        )

    @extend_schema(
        operation_id="surrogates_suggest",
        request=SuggestSerializer,
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["post"])
    def suggest(self, request: Request, pk: str) -> Response:
        """The next k runs to make: the most uncertain, or the nearest to `target`."""
        body = SuggestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        return Response(
            services.surrogate_suggest(
                actor_from_request(request),
                model_id=int(pk),
                k=data["k"],
                axes=data.get("axes"),
                candidates=data.get("candidates"),
                target=data.get("target"),
                alias=data.get("alias"),
                version_id=data.get("version"),
            )
        )


class ModelVersionViewSet(viewsets.GenericViewSet[ModelVersion]):
    lookup_value_converter = "id"
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.none()

    @extend_schema(operation_id="surrogate_versions_retrieve")
    def retrieve(self, request: Request, pk: str) -> Response:
        version = selectors.version_get(actor_from_request(request), int(pk))
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(
        operation_id="surrogate_versions_alias",
        request=AliasSerializer,
        responses={
            200: inline_serializer(
                "AliasSet",
                {"alias": serializers.CharField(), "version": serializers.IntegerField()},
            )
        },
    )
    @action(detail=True, methods=["post"])
    def alias(self, request: Request, pk: str) -> Response:
        """Point an alias of the model (such as `current`) at this version."""
        body = AliasSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pointer = services.alias_set(
            actor_from_request(request), version_id=int(pk), alias=body.validated_data["alias"]
        )
        return Response({"alias": pointer.name, "version": pointer.version_id})
