"""REST door for the registry (`/api/v1/registry/services`): translate, call the
service or selector, render. Credentials are write-only."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from simlab.accounts.authentication import actor_from_request
from simlab.registry import selectors, services
from simlab.registry.models import (
    CheckResult,
    Granularity,
    Incident,
    Kind,
    Rollup,
    Service,
    ServiceState,
    Status,
    Visibility,
)
from simlab.registry.services.notify import apprise_shown
from simlab.web.api_fields import ObjectIdField, StrictSerializer


class StateSerializer(serializers.ModelSerializer[ServiceState]):
    class Meta:
        model = ServiceState
        fields = [
            "status",
            "consecutive_successes",
            "consecutive_failures",
            "next_check_at",
            "last_checked_at",
            "last_latency_ms",
            "last_error",
            "breaker_until",
            "breaker_level",
            "conformant",
            "status_changed_at",
        ]


class ServiceSerializer(serializers.ModelSerializer[Service]):
    state = StateSerializer(read_only=True)
    has_credentials = serializers.SerializerMethodField()
    notify_apprise = serializers.SerializerMethodField(
        help_text="Apprise URLs with their secrets masked (they often hold tokens)."
    )

    class Meta:
        model = Service
        fields = [
            "id",
            "organization",
            "name",
            "url",
            "kind",
            "visibility",
            "description",
            "enabled",
            "interval_s",
            "unhealthy_interval_s",
            "timeout_s",
            "failure_threshold",
            "success_threshold",
            "jitter_s",
            "expected_status",
            "max_latency_ms",
            "json_equals",
            "cert_expiry_days",
            "tags",
            "maintenance",
            "notify_webhooks",
            "notify_emails",
            "notify_apprise",
            "has_credentials",
            "created_at",
            "updated_at",
            "state",
        ]

    def get_has_credentials(self, obj: Service) -> bool:
        return bool(obj.credentials_encrypted)

    def get_notify_apprise(self, obj: Service) -> list[str]:
        return [apprise_shown(url) for url in obj.notify_apprise]


_COMPUTED = ("organization", "has_credentials", "notify_apprise", "created_at", "updated_at")
_SERVICE_COLUMNS = [
    name for name in ServiceSerializer.Meta.fields if name not in (*_COMPUTED, "state")
]
_STATE_COLUMNS = [
    name
    for name in StateSerializer.Meta.fields
    if name not in ("next_check_at", "last_checked_at", "breaker_until", "status_changed_at")
]
_DATETIME = serializers.DateTimeField()


def _when(value: Any) -> Any:
    return _DATETIME.to_representation(value) if value is not None else None


def service_data(service: Service) -> dict[str, Any]:
    """One service as ServiceSerializer renders it, built directly: a page of services is
    the registry's hottest read, and the serializer's per-field machinery cost several
    times the query (tests/registry/test_api.py holds the two equal)."""
    data = {name: getattr(service, name) for name in _SERVICE_COLUMNS}
    data["organization"] = service.organization_id
    data["has_credentials"] = bool(service.credentials_encrypted)
    data["notify_apprise"] = [apprise_shown(url) for url in service.notify_apprise]
    data["created_at"] = _when(service.created_at)
    data["updated_at"] = _when(service.updated_at)
    state: ServiceState | None = getattr(service, "state", None)
    if state is None:
        data["state"] = None
        return data
    hot = {name: getattr(state, name) for name in _STATE_COLUMNS}
    for name in ("next_check_at", "last_checked_at", "breaker_until", "status_changed_at"):
        hot[name] = _when(getattr(state, name))
    data["state"] = hot
    return data


class _ServiceFields(StrictSerializer):
    """The fields a client may send; the service validates their rules (timeout below
    the intervals and the rest) for every door."""

    name = serializers.CharField(max_length=200)
    url = serializers.CharField(max_length=2000)
    kind = serializers.ChoiceField(choices=Kind.choices, required=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    interval_s = serializers.IntegerField(required=False)
    unhealthy_interval_s = serializers.IntegerField(required=False)
    timeout_s = serializers.FloatField(required=False)
    failure_threshold = serializers.IntegerField(required=False)
    success_threshold = serializers.IntegerField(required=False)
    jitter_s = serializers.FloatField(required=False)
    expected_status = serializers.ListField(child=serializers.IntegerField(), required=False)
    max_latency_ms = serializers.IntegerField(required=False, allow_null=True)
    json_equals = serializers.DictField(required=False)
    cert_expiry_days = serializers.IntegerField(required=False, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    maintenance = serializers.ListField(child=serializers.DictField(), required=False)
    notify_webhooks = serializers.ListField(child=serializers.CharField(), required=False)
    notify_emails = serializers.ListField(child=serializers.CharField(), required=False)
    notify_apprise = serializers.ListField(
        child=serializers.CharField(max_length=2000),
        required=False,
        help_text="Apprise URLs (e.g. mailto://, tgram://, json://); shown back masked.",
    )
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="HTTP headers each check sends (e.g. Authorization); stored encrypted, "
        "never shown again. {} removes them.",
    )


class ServiceCreateSerializer(_ServiceFields):
    organization = ObjectIdField(
        required=False, allow_null=True, help_text="Omit or null: a shared service (staff only)."
    )


class ServiceUpdateSerializer(_ServiceFields):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("name", "url"):
            self.fields[name].required = False


class ListFilterSerializer(serializers.Serializer[Any]):
    organization = ObjectIdField(required=False)
    kind = serializers.ChoiceField(choices=Kind.choices, required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    tag = serializers.CharField(required=False, max_length=100)
    usable = serializers.BooleanField(required=False, allow_null=True, default=None)


class RollupQuerySerializer(serializers.Serializer[Any]):
    granularity = serializers.ChoiceField(choices=Granularity.choices, default=Granularity.HOUR)
    since = serializers.DateTimeField(required=False, default=None)


class CheckResultSerializer(serializers.ModelSerializer[CheckResult]):
    class Meta:
        model = CheckResult
        fields = ["id", "checked_at", "ok", "degraded", "latency_ms", "status_code", "error"]


class IncidentSerializer(serializers.ModelSerializer[Incident]):
    class Meta:
        model = Incident
        fields = ["id", "opened_at", "resolved_at", "cause", "transitions"]


class RollupSerializer(serializers.ModelSerializer[Rollup]):
    class Meta:
        model = Rollup
        fields = [
            "bucket",
            "count",
            "ok_count",
            "latency_sum_ms",
            "latency_min_ms",
            "latency_max_ms",
        ]


class TestResultSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField()
    degraded = serializers.BooleanField()
    checked_at = serializers.DateTimeField()
    latency_ms = serializers.FloatField(allow_null=True)
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    service_info = serializers.JSONField(allow_null=True)
    conformant = serializers.BooleanField(allow_null=True)


def _page_of(name: str, serializer: serializers.Serializer[Any]) -> Any:
    """The schema of one page (PageNumberPagination's shape) of `serializer` rows."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.CharField(allow_null=True),
            "previous": serializers.CharField(allow_null=True),
            "results": serializer,
        },
    )


PAGE_PARAMETER = OpenApiParameter("page", int, description="1-based page number")


def _changes(data: serializers.Serializer[Any]) -> dict[str, Any]:
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


class ServiceViewSet(viewsets.GenericViewSet[Service]):
    lookup_value_converter = "id"
    serializer_class = ServiceSerializer
    queryset = Service.objects.none()  # rows come from the selector; this types the schema
    ordering_fields = ["name", "created_at", "id"]

    def get_queryset(self) -> Any:
        return selectors.service_list(actor_from_request(self.request))

    @extend_schema(operation_id="registry_services_list", parameters=[ListFilterSerializer])
    def list(self, request: Request) -> Response:
        filters = ListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = dict(filters.validated_data)
        qs = selectors.service_list(
            actor_from_request(request), organization_id=wanted.pop("organization", None), **wanted
        )
        page = self.paginate_queryset(self.filter_queryset(qs)) or []
        return self.get_paginated_response([service_data(s) for s in page])

    @extend_schema(
        operation_id="registry_services_create",
        request=ServiceCreateSerializer,
        responses={201: ServiceSerializer},
    )
    def create(self, request: Request) -> Response:
        fields = _changes(ServiceCreateSerializer(data=request.data))
        organization_id = fields.pop("organization", None)
        service = services.service_create(
            actor_from_request(request), organization_id=organization_id, **fields
        )
        service = selectors.service_get(actor_from_request(request), service.pk)
        return Response(service_data(service), status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="registry_services_retrieve")
    def retrieve(self, request: Request, pk: str) -> Response:
        service = selectors.service_get(actor_from_request(request), int(pk))
        return Response(service_data(service))

    @extend_schema(
        operation_id="registry_services_update",
        request=ServiceUpdateSerializer,
        responses={200: ServiceSerializer},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        fields = _changes(ServiceUpdateSerializer(data=request.data, partial=True))
        actor = actor_from_request(request)
        services.service_update(actor, int(pk), **fields)
        return Response(service_data(selectors.service_get(actor, int(pk))))

    @extend_schema(operation_id="registry_services_delete", responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.service_delete(actor_from_request(request), int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="registry_services_test_connection",
        request=None,
        responses={200: TestResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request: Request, pk: str) -> Response:
        """Check the service now; the result is recorded like a scheduled check's."""
        result = services.service_test_connection(actor_from_request(request), int(pk))
        return Response(result.as_dict())

    @extend_schema(
        operation_id="registry_services_history",
        responses={200: _page_of("CheckResultPage", CheckResultSerializer(many=True))},
        parameters=[PAGE_PARAMETER],
    )
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        """Raw check results, newest first, a page at a time (kept for the retention
        period; rollups hold the long view)."""
        qs = selectors.service_result_list(actor_from_request(request), int(pk))
        return self._paged(qs, CheckResultSerializer)

    @extend_schema(
        operation_id="registry_services_incidents",
        responses={200: _page_of("IncidentPage", IncidentSerializer(many=True))},
        parameters=[PAGE_PARAMETER],
    )
    @action(detail=True, methods=["get"])
    def incidents(self, request: Request, pk: str) -> Response:
        qs = selectors.service_incident_list(actor_from_request(request), int(pk))
        return self._paged(qs, IncidentSerializer)

    def _paged(
        self, qs: QuerySet[Any], serializer: type[serializers.BaseSerializer[Any]]
    ) -> Response:
        """A page of rows of another model than the viewset's, as its list pages."""
        paginator = self.paginator
        assert paginator is not None
        page = paginator.paginate_queryset(qs, self.request, view=self)
        return paginator.get_paginated_response(serializer(page or [], many=True).data)

    @extend_schema(
        operation_id="registry_services_rollups",
        responses={200: RollupSerializer(many=True)},
        parameters=[RollupQuerySerializer],
    )
    @action(detail=True, methods=["get"])
    def rollups(self, request: Request, pk: str) -> Response:
        """Per-minute, hour or day counts and latencies (`?granularity=`, `?since=`)."""
        query = RollupQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        qs = selectors.service_rollup_list(
            actor_from_request(request), int(pk), **query.validated_data
        )
        return Response(RollupSerializer(qs[:2000], many=True).data)
