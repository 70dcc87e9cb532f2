"""REST doors for simulations, sweeps, algorithms and results: translate, call, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from simlab import engine
from simlab.accounts.authentication import actor_from_request
from simlab.accounts.models import User
from simlab.core.actor import Actor
from simlab.core.errors import NotFound, ValidationFailed
from simlab.core.files import stored_file_response
from simlab.simulations import idempotency, selectors, services
from simlab.simulations.models import (
    FlagKind,
    ParameterSweep,
    Phase,
    RunFlag,
    Simulation,
    Status,
    current_phase,
)
from simlab.web.api_fields import ObjectIdField, StrictSerializer


# --- serializers ----------------------------------------------------------------------------
class RunFlagSerializer(serializers.ModelSerializer[RunFlag]):
    class Meta:
        model = RunFlag
        fields = ["kind", "score", "reason", "created_at"]


_RUN_FLAG = RunFlagSerializer()


class RemoteTargetSerializer(serializers.Serializer[Any]):
    """The schema of `selectors.remote_of` (rendering reads the dict as it is)."""

    service_id = serializers.IntegerField(allow_null=True, help_text="Null once deleted.")
    service_name = serializers.CharField(allow_null=True)
    remote_id = serializers.CharField(allow_null=True, help_text="Null until it is sent.")
    state = serializers.CharField(allow_null=True, help_text="Its WES state there.")
    last_sync_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


_DATETIME = serializers.DateTimeField()


class SimulationSerializer(serializers.ModelSerializer[Simulation]):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    phase = serializers.SerializerMethodField(
        help_text=(
            "While RUNNING: 'compiling' (its worker loads or compiles the model's kernels, "
            "before progress starts) or 'running'; null in every other status."
        )
    )
    tags = serializers.ListField(source="tag_list", child=serializers.CharField(), read_only=True)
    eta_s = serializers.SerializerMethodField(
        help_text=(
            "QUEUED or RUNNING: seconds until it is expected to finish (its progress blended "
            "with its algorithm's runtime model; for a queued run, the queue ahead of it). "
            "Null when finished or when nothing is known yet."
        )
    )
    flags = serializers.SerializerMethodField(
        help_text="Anomaly flags: kind (replica, stalled, surrogate), score, reason, created_at."
    )
    links = serializers.SerializerMethodField()
    remote = serializers.SerializerMethodField(
        help_text=(
            "Where it runs when sent to a registered service (null: here): the service's "
            "id and name, the run's id and WES state there, when it last answered, and "
            "the last error talking to it."
        )
    )

    class Meta:
        model = Simulation
        fields = [
            "id",
            "project",
            "sweep",
            "algorithm",
            "parameters",
            "seed",
            "status",
            "phase",
            "progress",
            "metrics",
            "error_message",
            "attempts",
            "tags",
            "note",
            "eta_s",
            "flags",
            "created_by",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "links",
            "remote",
        ]

    @extend_schema_field(
        serializers.ChoiceField(choices=Phase.choices, allow_null=True, read_only=True)
    )
    def get_phase(self, obj: Simulation) -> str | None:
        return current_phase(obj.status, obj.phase)

    @extend_schema_field(serializers.FloatField(allow_null=True, read_only=True))
    def get_eta_s(self, obj: Simulation) -> float | None:
        return getattr(obj, "eta_s", None)  # set by `selectors.with_etas`

    @extend_schema_field(RunFlagSerializer(many=True, read_only=True))
    def get_flags(self, obj: Simulation) -> list[dict[str, Any]]:
        if not obj.flags:
            return []  # no query for the runs without flags (nearly all)
        return [_RUN_FLAG.to_representation(flag) for flag in obj.flag_rows.all()]

    @extend_schema_field(RemoteTargetSerializer(allow_null=True, read_only=True))
    def get_remote(self, obj: Simulation) -> dict[str, Any] | None:
        remote = selectors.remote_of(obj)
        if remote is not None and remote["last_sync_at"] is not None:
            remote["last_sync_at"] = _DATETIME.to_representation(remote["last_sync_at"])
        return remote

    def get_links(self, obj: Simulation) -> dict[str, str | None]:
        done = obj.result_ready()
        return {
            "self": reverse("simulation-detail", args=[obj.pk]),
            "npz": reverse("simulation-result-npz", args=[obj.pk]) if done else None,
            "png": reverse("simulation-result-png", args=[obj.pk]) if done else None,
            "metrics": reverse("simulation-result-metrics", args=[obj.pk]) if done else None,
        }


class AnnotationSerializer(StrictSerializer):
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100),
        max_length=100,
        required=False,
        help_text="Replaces the run's tags (lower case; letters, digits, space - _ . :).",
    )
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=10_000, trim_whitespace=False
    )


# Built once and reused: a ModelSerializer derives its fields from the model on every
# instantiation, which costs more than rendering one simulation. Rendering reads the
# fields only, so one instance serves every thread.
_SIMULATION = SimulationSerializer()


def simulation_data(simulation: Simulation) -> dict[str, Any]:
    """One simulation as the API shows it (SimulationSerializer's output)."""
    data: dict[str, Any] = _SIMULATION.to_representation(simulation)
    return data


class SimulationCreateSerializer(StrictSerializer):
    algorithm = serializers.CharField(max_length=64, help_text="See GET /api/v1/algorithms/.")
    parameters = serializers.JSONField(default=dict, help_text="Checked by the algorithm's schema.")
    seed = serializers.IntegerField(required=False, min_value=0, help_text="Random if omitted.")
    queue = serializers.BooleanField(default=True, help_text="Queue it now (default).")
    service_id = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Run it on this registered service (kind simlab or ga4gh-wes, usable now).",
    )


# Also built once: validating is a read of the fields too (`run_validation` keeps no state
# on the serializer), and the errors are those `is_valid(raise_exception=True)` raises.
_CREATE = SimulationCreateSerializer()


class _BatchItem(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    algorithm: str
    parameters: dict[str, Any] = {}
    seed: int | None = None


class _BatchBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    simulations: list[_BatchItem]
    queue: bool = True
    service_id: pydantic.PositiveInt | None = None


class SweepSerializer(serializers.ModelSerializer[ParameterSweep]):
    counts = serializers.SerializerMethodField()

    class Meta:
        model = ParameterSweep
        fields = [
            "id",
            "project",
            "name",
            "algorithm",
            "base_parameters",
            "axes",
            "seeds_per_point",
            "status",
            "total",
            "counts",
            "created_at",
            "finished_at",
        ]

    def get_counts(self, obj: ParameterSweep) -> dict[str, int]:
        return selectors.sweep_status_counts(obj)


class AxisSerializer(StrictSerializer):
    parameter = serializers.CharField()
    values = serializers.ListField(child=serializers.JSONField(), min_length=1)


class SweepCreateSerializer(StrictSerializer):
    algorithm = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    base_parameters = serializers.JSONField(default=dict)
    axes = AxisSerializer(many=True, help_text="One axis, or several for a grid.")
    seeds_per_point = serializers.IntegerField(default=1, min_value=1, max_value=1000)
    seed = serializers.IntegerField(required=False, min_value=0)
    service_id = serializers.IntegerField(
        required=False, min_value=1, help_text="Run every child on this registered service."
    )


def _parse_batch(data: Any) -> _BatchBody:
    try:
        return _BatchBody.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None


# --- views ----------------------------------------------------------------------------------
class SimulationCursor(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


FILTER_PARAMETERS = [
    OpenApiParameter("status", str, enum=[s.value for s in Status]),
    OpenApiParameter("algorithm", str),
    OpenApiParameter("sweep", int),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME),
    OpenApiParameter("flagged", bool, description="Only runs with (true) or without any flag."),
    OpenApiParameter("flag", str, enum=[k.value for k in FlagKind], description="Flag kind."),
]


class _FilterSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    algorithm = serializers.CharField(required=False)
    sweep = ObjectIdField(required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    flagged = serializers.BooleanField(required=False, allow_null=True, default=None)
    flag = serializers.ChoiceField(choices=FlagKind.choices, required=False)


IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes the create safe to retry: the same key with the same request answers as the "
        "first time without creating again; with another request, 422. Kept for a day."
    ),
)


def _idempotent(request: Request, actor: Actor, work: Callable[[], idempotency.Answer]) -> Response:
    """`work()`'s answer, once per Idempotency-Key (a replay says so in a header)."""
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    fingerprint = (
        idempotency.fingerprint(request.method or "", request.path, request.data) if key else ""
    )
    (status_code, body), replayed = idempotency.run_once(
        actor, key=key, request_fingerprint=fingerprint, work=work
    )
    response = Response(body, status=status_code)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


class ProjectSimulationViewSet(viewsets.GenericViewSet[Simulation]):
    """Simulations of one project: list with filters, create one, create a batch."""

    serializer_class = SimulationSerializer
    queryset = Simulation.objects.none()
    pagination_class = SimulationCursor
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at", "-id"]

    @extend_schema(operation_id="simulations_list", parameters=FILTER_PARAMETERS)
    def list(self, request: Request, project_pk: str) -> Response:
        filters = _FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        qs = selectors.simulation_list(
            actor_from_request(request),
            project_id=int(project_pk),
            status=data.get("status"),
            algorithm=data.get("algorithm"),
            sweep_id=data.get("sweep"),
            created_after=data.get("created_after"),
            created_before=data.get("created_before"),
            flagged=data.get("flagged"),
            flag=data.get("flag"),
        ).select_related("created_by")
        page = selectors.with_etas(self.paginate_queryset(qs.prefetch_related("flag_rows")) or [])
        return self.get_paginated_response(SimulationSerializer(page, many=True).data)

    @extend_schema(
        operation_id="simulations_create",
        request=SimulationCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: SimulationSerializer},
        examples=[
            OpenApiExample(
                "DLA cluster",
                value={"algorithm": "dla", "parameters": {"n_particles": 20000}, "seed": 7},
                request_only=True,
            )
        ],
    )
    def create(self, request: Request, project_pk: str) -> Response:
        actor = actor_from_request(request)

        def create_one() -> idempotency.Answer:
            body = _CREATE.run_validation(request.data)
            simulation = services.simulation_create(
                actor,
                project_id=int(project_pk),
                algorithm=body["algorithm"],
                parameters=body["parameters"],
                seed=body.get("seed"),
                queue=body["queue"],
                service_id=body.get("service_id"),
            )
            creator = request.user
            if isinstance(creator, User) and simulation.created_by_id == creator.pk:
                simulation.created_by = creator  # already loaded: rendering needs no query
            return status.HTTP_201_CREATED, simulation_data(simulation)

        return _idempotent(request, actor, create_one)

    @extend_schema(
        operation_id="simulations_create_batch",
        parameters=[IDEMPOTENCY_KEY],
        request=inline_serializer(
            "SimulationBatch",
            {
                "simulations": SimulationCreateSerializer(many=True),
                "queue": serializers.BooleanField(default=True),
            },
        ),
        responses={
            201: inline_serializer(
                "SimulationBatchCreated",
                {
                    "count": serializers.IntegerField(),
                    "ids": serializers.ListField(child=serializers.IntegerField()),
                    "status": serializers.CharField(),
                },
            )
        },
        examples=[
            OpenApiExample(
                "Three DLA runs",
                value={
                    "simulations": [
                        {"algorithm": "dla", "parameters": {"n_particles": 1000}, "seed": s}
                        for s in (1, 2, 3)
                    ]
                },
                request_only=True,
            )
        ],
        description="Create (and queue) many simulations at once: one insert, one publish.",
    )
    @action(detail=False, methods=["post"])
    def batch(self, request: Request, project_pk: str) -> Response:
        actor = actor_from_request(request)

        def create_many() -> idempotency.Answer:
            body = _parse_batch(request.data)
            ids = services.simulation_create_batch(
                actor,
                project_id=int(project_pk),
                specs=[
                    services.SimulationSpec(item.algorithm, item.parameters, item.seed)
                    for item in body.simulations
                ],
                queue=body.queue,
                service_id=body.service_id,
            )
            status_name = Status.QUEUED if body.queue else Status.CREATED
            return status.HTTP_201_CREATED, {"count": len(ids), "ids": ids, "status": status_name}

        return _idempotent(request, actor, create_many)


def _whole(name: str, value: str) -> int:
    """A tile coordinate: ASCII digits, bounded (a 400 naming it otherwise)."""
    if not (value.isascii() and value.isdigit() and len(value) <= 6):
        raise ValidationFailed.for_fields({name: ["A whole number from 0 is required."]})
    return int(value)


class TilesMetaSerializer(serializers.Serializer[Any]):
    """The shape of the `tiles` answer (for the schema)."""

    levels = serializers.IntegerField()
    tile_size = serializers.IntegerField()
    particles = serializers.IntegerField()
    dimension = serializers.IntegerField()
    extent = serializers.DictField(child=serializers.FloatField())
    version = serializers.CharField()
    tile_url = serializers.CharField()


class SimulationViewSet(viewsets.GenericViewSet[Simulation]):
    """One simulation: read it, cancel or retry it, download its results."""

    lookup_value_converter = "id"  # simlab.core.ids: ASCII digits, 64-bit

    serializer_class = SimulationSerializer
    queryset = Simulation.objects.none()

    def _get(self, request: Request, pk: str) -> Simulation:
        return selectors.simulation_get(actor_from_request(request), int(pk))

    @extend_schema(operation_id="simulations_retrieve")
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(simulation_data(selectors.with_etas([self._get(request, pk)])[0]))

    @extend_schema(operation_id="simulations_delete", responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.simulation_delete(actor_from_request(request), int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="simulations_annotate", request=AnnotationSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        """Set the run's tags (replacing them) and its note."""
        actor = actor_from_request(request)
        current = selectors.simulation_get(actor, int(pk))
        body = AnnotationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        simulation = services.simulation_annotate(
            actor,
            current.pk,
            tags=data.get("tags", current.tag_list),
            note=data.get("note", current.note),
        )
        return Response(simulation_data(simulation))

    @extend_schema(operation_id="simulations_cancel", request=None)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        simulation = services.simulation_cancel(actor_from_request(request), int(pk))
        return Response(simulation_data(simulation))

    @extend_schema(operation_id="simulations_retry", request=None)
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        simulation = services.simulation_retry(actor_from_request(request), int(pk))
        return Response(simulation_data(simulation))

    def _succeeded(self, request: Request, pk: str, file_field: str = "") -> Simulation:
        """The simulation if its results are there (and its `file_field`, if named)."""
        simulation = self._get(request, pk)
        if not simulation.result_ready(file_field or "result_npz"):
            raise NotFound(
                f"No result yet: the simulation is {simulation.status}.",
                code="result_not_ready",
                details={"status": simulation.status},
            )
        return simulation

    def _file(
        self, request: Request, pk: str, field: str, content_type: str
    ) -> StreamingHttpResponse:
        simulation = self._succeeded(request, pk, field)
        name = getattr(simulation, field).name
        extension = name.rsplit(".", 1)[-1]
        return stored_file_response(
            name,
            content_type=content_type,
            filename=f"simulation-{simulation.pk}.{extension}",
            as_attachment=extension == "npz",
        )

    @extend_schema(operation_id="simulations_result_npz", responses={200: OpenApiTypes.BINARY})
    def result_npz(self, request: Request, pk: str) -> StreamingHttpResponse:
        """The raw arrays (NumPy .npz)."""
        return self._file(request, pk, "result_npz", "application/octet-stream")

    @extend_schema(operation_id="simulations_result_png", responses={200: OpenApiTypes.BINARY})
    def result_png(self, request: Request, pk: str) -> StreamingHttpResponse:
        """A picture of the result."""
        return self._file(request, pk, "result_png", "image/png")

    @extend_schema(
        operation_id="simulations_tiles",
        responses={200: TilesMetaSerializer},
        description=(
            "How the zoomable picture of a large aggregate is tiled: its levels (0 to "
            "`levels`, 2^z x 2^z tiles of `tile_size` px at level z), the world extent "
            "it shows, and the `version` to add to tile URLs (`?v=`) so they are cached "
            "for good. 404 `no_tiles` when the result has no pyramid."
        ),
    )
    def tiles(self, request: Request, pk: str) -> Response:
        actor = actor_from_request(request)
        simulation, index, version = selectors.simulation_tiles(actor, int(pk))
        url = reverse("simulation-tile", args=[simulation.pk, 0, 0, 0])
        template = url.replace("/0/0/0.png", "/{z}/{x}/{y}.png") + f"?v={version}"
        return Response({**index.metadata(), "version": version, "tile_url": template})

    @extend_schema(
        operation_id="simulations_tile",
        parameters=[
            OpenApiParameter("z", int, OpenApiParameter.PATH, description="Zoom level."),
            OpenApiParameter("x", int, OpenApiParameter.PATH, description="Column, from 0."),
            OpenApiParameter("y", int, OpenApiParameter.PATH, description="Row, from 0 (top)."),
            OpenApiParameter(
                "v",
                str,
                description="The pyramid's version (from `tiles`): with it, the tile is "
                "cached as immutable.",
            ),
        ],
        responses={200: OpenApiTypes.BINARY},
        description=(
            "One 256 px tile of the picture, a palette PNG: 400 naming the coordinate "
            "when one is not a whole number, 404 naming it when it lies outside the "
            "pyramid."
        ),
    )
    def tile(self, request: Request, pk: str, z: str, x: str, y: str) -> HttpResponse:
        coordinates = {name: _whole(name, value) for name, value in (("z", z), ("x", x), ("y", y))}
        png, version = selectors.simulation_tile(
            actor_from_request(request), int(pk), **coordinates
        )
        tag = f'"{version}-{z}-{x}-{y}"'
        if request.headers.get("If-None-Match") == tag:
            response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
        else:
            response = HttpResponse(png, content_type="image/png")
        response["ETag"] = tag
        # Versioned URLs never change; others are checked again (a retry replaces tiles).
        pinned = request.query_params.get("v") == version
        response["Cache-Control"] = (
            "private, max-age=31536000, immutable" if pinned else "private, no-cache"
        )
        return response

    @extend_schema(operation_id="simulations_result_metrics", responses={200: OpenApiTypes.OBJECT})
    def result_metrics(self, request: Request, pk: str) -> Response:
        simulation = self._succeeded(request, pk)
        return Response(
            {
                "id": simulation.pk,
                "algorithm": simulation.algorithm,
                "parameters": simulation.parameters,
                "seed": simulation.seed,
                "metrics": simulation.metrics,
            }
        )


class ProjectSweepViewSet(viewsets.GenericViewSet[ParameterSweep]):
    serializer_class = SweepSerializer
    queryset = ParameterSweep.objects.none()
    ordering_fields = ["created_at", "id", "name", "status"]

    @extend_schema(operation_id="sweeps_list")
    def list(self, request: Request, project_pk: str) -> Response:
        qs = selectors.sweep_list(actor_from_request(request), project_id=int(project_pk))
        page = self.paginate_queryset(self.filter_queryset(qs))
        return self.get_paginated_response(SweepSerializer(page, many=True).data)

    @extend_schema(
        operation_id="sweeps_create",
        request=SweepCreateSerializer,
        responses={201: SweepSerializer},
        examples=[
            OpenApiExample(
                "Sticking probability by size grid",
                value={
                    "algorithm": "dla",
                    "base_parameters": {"n_particles": 2000},
                    "axes": [
                        {"parameter": "sticking_probability", "values": [0.1, 0.5, 1.0]},
                        {"parameter": "n_particles", "values": [1000, 2000]},
                    ],
                    "seeds_per_point": 2,
                },
                request_only=True,
            )
        ],
    )
    def create(self, request: Request, project_pk: str) -> Response:
        body = SweepCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        sweep = services.sweep_create(
            actor_from_request(request),
            project_id=int(project_pk),
            algorithm=data["algorithm"],
            axes=data["axes"],
            base_parameters=data["base_parameters"],
            seeds_per_point=data["seeds_per_point"],
            seed=data.get("seed"),
            name=data["name"],
            service_id=data.get("service_id"),
        )
        return Response(SweepSerializer(sweep).data, status=status.HTTP_201_CREATED)


SWEEP_DETAIL_CHILDREN = 100


class SweepChildSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    parameters = serializers.DictField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    metrics = serializers.DictField()


class SweepChildCursor(CursorPagination):
    ordering = ("id",)
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class SweepViewSet(viewsets.GenericViewSet[ParameterSweep]):
    lookup_value_converter = "id"  # simlab.core.ids: ASCII digits, 64-bit
    serializer_class = SweepSerializer
    queryset = ParameterSweep.objects.none()

    @extend_schema(operation_id="sweeps_retrieve")
    def retrieve(self, request: Request, pk: str) -> Response:
        """The sweep and its first SWEEP_DETAIL_CHILDREN simulations; every one, page by
        page, at `simulations_url`."""
        actor = actor_from_request(request)
        sweep = selectors.sweep_get(actor, int(pk))
        children = selectors.simulation_list(actor, sweep_id=sweep.pk).order_by("id")
        first = list(children[: SWEEP_DETAIL_CHILDREN + 1])
        return Response(
            {
                **SweepSerializer(sweep).data,
                "simulations": SweepChildSerializer(first[:SWEEP_DETAIL_CHILDREN], many=True).data,
                "simulations_truncated": len(first) > SWEEP_DETAIL_CHILDREN,
                "simulations_url": reverse("sweep-simulations", args=[sweep.pk]),
            }
        )

    @extend_schema(operation_id="sweeps_delete", responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.sweep_delete(actor_from_request(request), int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="sweeps_simulations",
        responses={
            200: inline_serializer(
                "SweepChildPage",
                {
                    "next": serializers.CharField(allow_null=True),
                    "previous": serializers.CharField(allow_null=True),
                    "results": SweepChildSerializer(many=True),
                },
            )
        },
        parameters=[
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", int, description="1 to 1000 (default 100)"),
        ],
    )
    @action(detail=True, methods=["get"])
    def simulations(self, request: Request, pk: str) -> Response:
        """Every simulation of the sweep, in creation order, a page at a time."""
        actor = actor_from_request(request)
        sweep = selectors.sweep_get(actor, int(pk))
        paginator = SweepChildCursor()
        page = paginator.paginate_queryset(
            selectors.simulation_list(actor, sweep_id=sweep.pk), request, view=self
        )
        return paginator.get_paginated_response(SweepChildSerializer(page or [], many=True).data)

    @extend_schema(operation_id="sweeps_results", responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def results(self, request: Request, pk: str) -> Response:
        """The aggregate table: one row per point, metrics averaged over its seeds."""
        return Response(selectors.sweep_results(actor_from_request(request), int(pk)))


def algorithm_info(algorithm: engine.Algorithm) -> dict[str, Any]:
    return {
        "name": algorithm.name,
        "title": algorithm.title,
        "description": algorithm.description,
        "kind": algorithm.kind,
        "parameters_schema": algorithm.json_schema(),
    }


class AlgorithmSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.CharField()
    parameters_schema = serializers.DictField(help_text="JSON Schema of the parameters.")


class AlgorithmViewSet(viewsets.ViewSet):
    """The registered algorithms and their parameters' JSON Schema (from the engine)."""

    lookup_value_converter = "slug"

    @extend_schema(operation_id="algorithms_list", responses={200: AlgorithmSerializer(many=True)})
    def list(self, request: Request) -> Response:
        return Response([algorithm_info(a) for _, a in sorted(engine.algorithms().items())])

    @extend_schema(operation_id="algorithms_retrieve", responses={200: AlgorithmSerializer})
    def retrieve(self, request: Request, pk: str) -> Response:
        try:
            return Response(algorithm_info(engine.get_algorithm(pk)))
        except engine.UnknownAlgorithm:
            raise NotFound(f"No algorithm named '{pk}'.") from None
