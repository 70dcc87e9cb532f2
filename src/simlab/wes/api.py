"""The GA4GH WES 1.1 door (`/ga4gh/wes/v1`): translate WES requests into the simulation
services and selectors, and render simulations as WES runs.

Errors are the one envelope plus WES's `msg` (its ErrorResponse is `{msg, status_code}`),
so WES clients and SimLab clients both read them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

import simlab
from simlab import engine
from simlab.accounts.authentication import actor_from_request
from simlab.core.errors import Conflict, NotFound, ValidationFailed
from simlab.core.ids import is_object_id
from simlab.simulations import selectors as simulation_selectors
from simlab.simulations import services as simulation_services
from simlab.simulations.api import (
    FILTER_PARAMETERS,
    SimulationCursor,
    SimulationSerializer,
    _FilterSerializer,
)
from simlab.simulations.models import FINISHED, Simulation, Status
from simlab.web.api_errors import exception_handler
from simlab.web.api_fields import ObjectIdField
from simlab.web.parsers import JSONParser
from simlab.wes import selectors, services
from simlab.wes.states import State, state_of

WORKFLOW_TYPE = "SimLab"
WORKFLOW_TYPE_VERSIONS = ["1.0"]
WES_VERSIONS = ["1.0.0", "1.1.0"]
URL_SCHEME = "simlab:"
MAX_TEXT = 200  # a tag's or engine parameter's value (the callback URL and secret included)
ENGINE_PARAMETERS = {
    "seed": ("int", "random", "The run's random seed, 0 to 2^63-1."),
    "callback_url": ("string", "", "Receives a signed POST of the run's status when it ends."),
    "callback_secret": ("string", "", "HMAC key of the callback signature (made if omitted)."),
}


# --- errors ---------------------------------------------------------------------------------
def wes_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The envelope (`simlab.web.api_errors`) with WES's `msg` beside it."""
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "error" in response.data:
        response.data = {"msg": response.data["error"]["message"], **response.data}
    return response


# WES names what the simulation service calls parameters, seed and algorithm differently.
_WES_FIELD = {
    "parameters": "workflow_params",
    "seed": "workflow_engine_parameters.seed",
    "algorithm": "workflow_url",
}


def _renamed(error: ValidationFailed) -> ValidationFailed:
    if not isinstance(error.details, Mapping):
        return error
    fields: dict[str, list[str]] = {}
    for path, messages in error.details.items():
        head, dot, rest = str(path).partition(".")
        fields[_WES_FIELD.get(head, head) + dot + rest] = list(messages)
    return ValidationFailed.for_fields(fields, status_code=error.status_code)


# --- input ----------------------------------------------------------------------------------
@extend_schema_field(
    {
        "oneOf": [{"type": "object"}, {"type": "string", "description": "A JSON object."}],
        "description": "A JSON object, or (multipart/form-data, as WES sends it) its text.",
    }
)
class JSONObjectField(serializers.Field):
    """A JSON object given as one, or as its text (a multipart form field), read by the REST
    API's JSON parser. `strings`: a map of strings (WES's tags and engine parameters)."""

    default_error_messages = {"invalid": "Must be a JSON object."}

    def __init__(self, *, strings: bool = False, **kwargs: Any) -> None:
        self.strings = strings
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = JSONParser().parse(io.BytesIO(data.encode())) if data.strip() else {}
            except (exceptions.ParseError, UnicodeEncodeError):
                self.fail("invalid")
        if not isinstance(data, dict):
            self.fail("invalid")
        if self.strings:
            # Numbers pass as their text; other values, NUL characters, long texts: 400.
            text = serializers.CharField(allow_blank=True, max_length=MAX_TEXT)
            values: dict[str, Any] = serializers.DictField(child=text).run_validation(data)
            return values
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class RunRequestSerializer(serializers.Serializer[Any]):
    """WES's RunRequest. `workflow_url` names the algorithm (`dla` or `simlab:dla`)."""

    workflow_params = JSONObjectField(
        required=False, default=dict, help_text="The algorithm's parameters."
    )
    workflow_type = serializers.ChoiceField(choices=[WORKFLOW_TYPE])
    workflow_type_version = serializers.ChoiceField(
        choices=WORKFLOW_TYPE_VERSIONS, required=False, default=WORKFLOW_TYPE_VERSIONS[-1]
    )
    workflow_url = serializers.CharField(
        max_length=200, help_text="The algorithm: its name, or `simlab:<name>`."
    )
    tags = JSONObjectField(
        strings=True,
        required=False,
        default=dict,
        help_text="`project`: the project's id (default: your first).",
    )
    workflow_engine_parameters = JSONObjectField(
        strings=True,
        required=False,
        default=dict,
        help_text="`seed`, `callback_url`, `callback_secret` (all optional).",
    )
    callback_url = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_TEXT, help_text="As the engine parameter."
    )

    def validate_workflow_url(self, value: str) -> str:
        name = value.strip().removeprefix(URL_SCHEME).strip("/")
        if name not in engine.algorithms():
            known = ", ".join(sorted(engine.algorithms()))
            raise serializers.ValidationError(f"Unknown algorithm '{value}'. Known: {known}.")
        return name

    def validate_tags(self, value: dict[str, str]) -> dict[str, str]:
        project = value.get("project")
        if project is not None and not is_object_id(project):
            raise serializers.ValidationError({"project": ["Must be a project's id."]})
        return value

    def validate_workflow_engine_parameters(self, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(ENGINE_PARAMETERS))
        if unknown:
            known = ", ".join(ENGINE_PARAMETERS)
            raise serializers.ValidationError(
                {name: [f"Unknown engine parameter. Known: {known}."] for name in unknown}
            )
        seed = value.get("seed")
        if seed is not None and not (seed.isascii() and seed.isdigit() and len(seed) <= 19):
            raise serializers.ValidationError({"seed": ["Must be an integer in [0, 2^63)."]})
        callback = value.get("callback_url")
        if callback:
            _check_callback_url(callback, {"callback_url": ["Must be an http(s) URL."]})
        return value

    def validate_callback_url(self, value: str) -> str:
        if value:
            _check_callback_url(value, ["Must be an http(s) URL."])
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        engine_parameters = attrs["workflow_engine_parameters"]
        attrs["callback_url"] = attrs.get("callback_url") or engine_parameters.get(
            "callback_url", ""
        )
        return attrs


def _check_callback_url(url: str, error: Any) -> None:
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError:
        raise serializers.ValidationError(error) from None


_RUN_REQUEST = RunRequestSerializer()


class RunFilterSerializer(_FilterSerializer):
    """The list's filters (a SimLab addition): the simulation list's, and WES states."""

    state = serializers.ChoiceField(choices=[s.value for s in State], required=False)
    project = ObjectIdField(required=False)
    tag = serializers.CharField(required=False, max_length=40)


# --- output ---------------------------------------------------------------------------------
def _log(simulation: Simulation) -> dict[str, Any]:
    """WES's Log of the simulation's (only) task: times, exit code, its error."""
    log: dict[str, Any] = {"name": simulation.algorithm}
    if simulation.started_at is not None:
        log["start_time"] = simulation.started_at.isoformat()
    if simulation.finished_at is not None:
        log["end_time"] = simulation.finished_at.isoformat()
    if simulation.status == Status.SUCCEEDED:
        log["exit_code"] = 0
    elif simulation.status == Status.FAILED:
        log["exit_code"] = 1
    log["system_logs"] = [simulation.error_message] if simulation.error_message else []
    return log


def _state(simulation: Simulation) -> State:
    return state_of(
        simulation.status, phase=simulation.phase, cancel_requested=simulation.cancel_requested
    )


def _run_request(simulation: Simulation) -> dict[str, Any]:
    """The request as submitted (WES runs) or as it would have been (other doors' runs)."""
    wes = getattr(simulation, "wes", None)
    engine_parameters = {"seed": str(simulation.seed)}
    tags = {"project": str(simulation.project_id)}
    if wes is not None:
        engine_parameters = {
            **{k: v for k, v in wes.engine_parameters.items() if k != "callback_secret"},
            **engine_parameters,
        }
        tags = {**wes.tags, **tags}
    return {
        "workflow_params": simulation.parameters,
        "workflow_type": WORKFLOW_TYPE,
        "workflow_type_version": wes.workflow_type_version if wes else WORKFLOW_TYPE_VERSIONS[-1],
        "workflow_url": wes.workflow_url if wes else f"{URL_SCHEME}{simulation.algorithm}",
        "tags": tags,
        "workflow_engine_parameters": engine_parameters,
    }


def run_summary(simulation: Simulation) -> dict[str, Any]:
    """WES 1.1's RunSummary (a RunStatus with times and tags)."""
    summary: dict[str, Any] = {
        "run_id": str(simulation.pk),
        "state": _state(simulation).value,
        "tags": {"project": str(simulation.project_id), "algorithm": simulation.algorithm},
    }
    if simulation.started_at is not None:
        summary["start_time"] = simulation.started_at.isoformat()
    if simulation.finished_at is not None:
        summary["end_time"] = simulation.finished_at.isoformat()
    return summary


def _task_log(simulation: Simulation) -> dict[str, Any]:
    return {"id": f"{simulation.pk}.{max(simulation.attempts, 1)}", **_log(simulation)}


def _task_logs(simulation: Simulation) -> list[dict[str, Any]]:
    """One task per run, once a worker has taken it."""
    return [_task_log(simulation)] if simulation.attempts else []


def run_log(request: Request, simulation: Simulation) -> dict[str, Any]:
    """WES's RunLog; `outputs` are the metrics and absolute links to the result files."""
    links = {
        name: request.build_absolute_uri(url)
        for name, url in SimulationSerializer().get_links(simulation).items()
        if url
    }
    return {
        "run_id": str(simulation.pk),
        "request": _run_request(simulation),
        "state": _state(simulation).value,
        "run_log": _log(simulation),
        "task_logs": _task_logs(simulation),
        "outputs": {"metrics": simulation.metrics, "links": links},
    }


# Output shapes, for the OpenAPI document only (the views render dicts).
class WesLogSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    start_time = serializers.CharField(required=False)
    end_time = serializers.CharField(required=False)
    exit_code = serializers.IntegerField(required=False)
    system_logs = serializers.ListField(child=serializers.CharField())


class WesTaskLogSerializer(WesLogSerializer):
    id = serializers.CharField()


_STATES = [s.value for s in State]


class WesRunIdSerializer(serializers.Serializer[Any]):
    run_id = serializers.CharField()
    callback_secret = serializers.CharField(
        required=False, help_text="Only when a callback was asked for without a secret."
    )


class WesRunStatusSerializer(serializers.Serializer[Any]):
    run_id = serializers.CharField()
    state = serializers.ChoiceField(choices=_STATES)


class WesRunSummarySerializer(WesRunStatusSerializer):
    start_time = serializers.CharField(required=False)
    end_time = serializers.CharField(required=False)
    tags = serializers.DictField(child=serializers.CharField())


class WesRunListSerializer(serializers.Serializer[Any]):
    runs = WesRunSummarySerializer(many=True)
    next_page_token = serializers.CharField(help_text="Empty on the last page.")


class WesRunRequestEchoSerializer(serializers.Serializer[Any]):
    workflow_params = serializers.DictField()
    workflow_type = serializers.CharField()
    workflow_type_version = serializers.CharField()
    workflow_url = serializers.CharField()
    tags = serializers.DictField(child=serializers.CharField())
    workflow_engine_parameters = serializers.DictField(child=serializers.CharField())


class WesRunLogSerializer(serializers.Serializer[Any]):
    run_id = serializers.CharField()
    request = WesRunRequestEchoSerializer()
    state = serializers.ChoiceField(choices=_STATES)
    run_log = WesLogSerializer()
    task_logs = WesTaskLogSerializer(many=True)
    outputs = serializers.DictField(help_text="`metrics` and `links` to the result files.")


class WesTaskListSerializer(serializers.Serializer[Any]):
    task_logs = WesTaskLogSerializer(many=True)
    next_page_token = serializers.CharField(help_text="Empty on the last page.")


class WesServiceInfoSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    name = serializers.CharField()
    type = serializers.DictField(child=serializers.CharField())
    organization = serializers.DictField(child=serializers.CharField())
    version = serializers.CharField()
    workflow_type_versions = serializers.DictField(
        child=serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    )
    supported_wes_versions = serializers.ListField(child=serializers.CharField())
    supported_filesystem_protocols = serializers.ListField(child=serializers.CharField())
    workflow_engine_versions = serializers.DictField(child=serializers.CharField())
    default_workflow_engine_parameters = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField())
    )
    system_state_counts = serializers.DictField(child=serializers.IntegerField())
    auth_instructions_url = serializers.CharField()
    tags = serializers.DictField(child=serializers.CharField())


# --- views ----------------------------------------------------------------------------------
class RunCursor(SimulationCursor):
    """The simulation list's cursor, spelt as WES pages: `page_token` in, `next_page_token`
    out (the token alone, not a URL)."""

    cursor_query_param = "page_token"

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise ValidationFailed.for_fields(
                {"page_token": ["Invalid page token: use one from next_page_token."]}
            ) from None

    def encode_cursor(self, cursor: Any) -> str:
        url = super().encode_cursor(cursor)
        return parse_qs(urlsplit(url).query)[self.cursor_query_param][0]


class WesView(APIView):
    def get_exception_handler(self) -> Any:
        return wes_exception_handler

    def _simulation(self, request: Request, run_id: str) -> Simulation:
        # A run id that cannot be one is as unknown as a foreign one.
        if not is_object_id(run_id):
            raise NotFound("No such run.")
        return simulation_selectors.simulation_get(actor_from_request(request), int(run_id))


class ServiceInfoView(WesView):
    permission_classes = [AllowAny]  # what it is and how to sign in: anyone may ask

    @extend_schema(
        operation_id="wes_service_info",
        tags=["GA4GH WES"],
        responses={200: WesServiceInfoSerializer},
        description="What this WES serves. `system_state_counts` counts the runs you may "
        "see (none when not signed in).",
    )
    def get(self, request: Request) -> Response:
        counts = (
            selectors.state_counts(actor_from_request(request))
            if request.user.is_authenticated
            else {}
        )
        algorithms = ",".join(sorted(engine.algorithms()))
        return Response(
            {
                "id": "org.simlab.wes",
                "name": "SimLab",
                "type": {"group": "org.ga4gh", "artifact": "wes", "version": WES_VERSIONS[-1]},
                "organization": {"name": "SimLab", "url": request.build_absolute_uri("/")},
                "version": simlab.__version__,
                "workflow_type_versions": {
                    WORKFLOW_TYPE: {"workflow_type_version": WORKFLOW_TYPE_VERSIONS}
                },
                "supported_wes_versions": WES_VERSIONS,
                "supported_filesystem_protocols": ["http", "https"],
                "workflow_engine_versions": {WORKFLOW_TYPE: simlab.__version__},
                "default_workflow_engine_parameters": [
                    {"name": name, "type": kind, "default_value": default}
                    for name, (kind, default, _) in ENGINE_PARAMETERS.items()
                ],
                "system_state_counts": counts,
                "auth_instructions_url": request.build_absolute_uri(reverse("api-docs")),
                "tags": {
                    "algorithms": algorithms,
                    "workflow_url": "An algorithm's name (e.g. dla) or simlab:<name>.",
                    "auth": "Authorization: Bearer <JWT or API key>, or X-API-Key: <key>.",
                },
            }
        )


RUN_FILTERS = [
    OpenApiParameter("page_size", int, description="1 to 1000 (default 50)."),
    OpenApiParameter("page_token", str, description="A `next_page_token`."),
    OpenApiParameter("state", str, enum=[s.value for s in State], description="A SimLab addition."),
    OpenApiParameter("project", int, description="Only this project's runs (a SimLab addition)."),
    OpenApiParameter("tag", str, description="Only runs with this tag (a SimLab addition)."),
    *FILTER_PARAMETERS,
]


class RunsView(WesView):
    @extend_schema(
        operation_id="wes_runs_list",
        tags=["GA4GH WES"],
        parameters=RUN_FILTERS,
        responses={200: WesRunListSerializer},
        description="Your runs, newest first, a page at a time; filters are SimLab additions.",
    )
    def get(self, request: Request) -> Response:
        filters = RunFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        state = data.get("state")
        qs = selectors.run_list(
            actor_from_request(request),
            state=State(state) if state else None,
            project_id=data.get("project"),
            algorithm=data.get("algorithm"),
            tag=data.get("tag"),
            created_after=data.get("created_after"),
            created_before=data.get("created_before"),
            status=data.get("status"),
            sweep_id=data.get("sweep"),
        )
        paginator = RunCursor()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return Response(
            {
                "runs": [run_summary(simulation) for simulation in page],
                "next_page_token": paginator.get_next_link() or "",
            }
        )

    @extend_schema(
        operation_id="wes_runs_submit",
        tags=["GA4GH WES"],
        request={
            "multipart/form-data": RunRequestSerializer,
            "application/json": RunRequestSerializer,
        },
        responses={200: WesRunIdSerializer},
        examples=[
            OpenApiExample(
                "A DLA cluster",
                value={
                    "workflow_type": "SimLab",
                    "workflow_type_version": "1.0",
                    "workflow_url": "dla",
                    "workflow_params": {"n_particles": 2000},
                    "workflow_engine_parameters": {"seed": "7"},
                },
                request_only=True,
            )
        ],
        description="Run an algorithm: multipart/form-data as WES sends it (JSON objects as "
        "text), or a JSON body. Parameters are checked by the algorithm's schema.",
    )
    def post(self, request: Request) -> Response:
        actor = actor_from_request(request)
        if not isinstance(request.data, Mapping):
            raise ValidationFailed.for_fields({"": ["The body must be a RunRequest object."]})
        if _has_attachments(request):
            raise ValidationFailed.for_fields(
                {"workflow_attachment": ["SimLab runs need no files: send none."]}
            )
        body = _RUN_REQUEST.run_validation(request.data)
        tags, engine_parameters = body["tags"], body["workflow_engine_parameters"]
        project = tags.get("project")
        seed = engine_parameters.get("seed")
        try:
            simulation, run = services.run_submit(
                actor,
                algorithm=body["workflow_url"],
                parameters=body["workflow_params"],
                project_id=int(project) if project is not None else None,
                seed=int(seed) if seed is not None else None,
                workflow_type_version=body["workflow_type_version"],
                workflow_url=str(request.data.get("workflow_url", "")).strip(),
                tags=tags,
                engine_parameters=engine_parameters,
                callback_url=body["callback_url"],
                callback_secret=engine_parameters.get("callback_secret", ""),
            )
        except ValidationFailed as error:
            raise _renamed(error) from None
        answer = {"run_id": str(simulation.pk)}
        if run.callback_url and not engine_parameters.get("callback_secret"):
            answer["callback_secret"] = run.callback_secret  # shown once
        return Response(answer)


def _has_attachments(request: Request) -> bool:
    data: Any = request.data
    values = (
        data.getlist("workflow_attachment")
        if hasattr(data, "getlist")
        else [data.get("workflow_attachment")]
    )
    return bool(request.FILES.getlist("workflow_attachment")) or any(values)


RUN_ID = OpenApiParameter("run_id", str, OpenApiParameter.PATH)


class RunView(WesView):
    @extend_schema(
        operation_id="wes_run_log",
        tags=["GA4GH WES"],
        parameters=[RUN_ID],
        responses={200: WesRunLogSerializer},
    )
    def get(self, request: Request, run_id: str) -> Response:
        simulation = self._simulation(request, run_id)
        return Response(run_log(request, simulation))


class RunStatusView(WesView):
    @extend_schema(
        operation_id="wes_run_status",
        tags=["GA4GH WES"],
        parameters=[RUN_ID],
        responses={200: WesRunStatusSerializer},
    )
    def get(self, request: Request, run_id: str) -> Response:
        simulation = self._simulation(request, run_id)
        return Response({"run_id": str(simulation.pk), "state": _state(simulation).value})


class RunCancelView(WesView):
    @extend_schema(
        operation_id="wes_run_cancel",
        tags=["GA4GH WES"],
        parameters=[RUN_ID],
        request=None,
        responses={200: WesRunIdSerializer},
        description="Cancel the run (a finished one stays as it ended: cancelling it again "
        "answers the same).",
    )
    def post(self, request: Request, run_id: str) -> Response:
        simulation = self._simulation(request, run_id)
        try:
            simulation_services.simulation_cancel(actor_from_request(request), simulation.pk)
        except Conflict as refused:
            # Already finished: WES's cancel has no conflict answer, and nothing is left to stop.
            if refused.details.get("status") not in FINISHED:
                raise
        return Response({"run_id": str(simulation.pk)})


class RunTasksView(WesView):
    @extend_schema(
        operation_id="wes_run_tasks",
        tags=["GA4GH WES"],
        parameters=[
            RUN_ID,
            OpenApiParameter("page_size", int),
            OpenApiParameter("page_token", str),
        ],
        responses={200: WesTaskListSerializer},
        description="The run's tasks (WES 1.1): one per run, once a worker has taken it.",
    )
    def get(self, request: Request, run_id: str) -> Response:
        simulation = self._simulation(request, run_id)
        return Response({"task_logs": _task_logs(simulation), "next_page_token": ""})
