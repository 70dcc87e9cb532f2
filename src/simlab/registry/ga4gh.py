"""The GA4GH Service Registry API 1.0.0, read side (`/ga4gh/registry/v1`), over the same
rows as the REST API and the checker. Beyond the specification: each service carries a
`health` object (status, latency, last check, conformance, usable), and `?usable=true`
lists only services that are up and usable by the caller."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from simlab.accounts.authentication import actor_from_request
from simlab.core.errors import NotFound
from simlab.registry import selectors
from simlab.registry.models import Kind, Service, ServiceState, Status

TYPES: dict[str, dict[str, str]] = {
    Kind.WES: {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
    Kind.TES: {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"},
    Kind.SIMLAB: {"group": "org.simlab", "artifact": "simlab", "version": "1.0.0"},
    Kind.HTTP: {"group": "org.simlab", "artifact": "http", "version": "1.0.0"},
}
SHARED = "SimLab (shared)"


def _type_of(service: Service, state: ServiceState | None) -> dict[str, str]:
    """The type the service declares in its service-info, else its kind's."""
    info = state.last_service_info if state is not None else None
    declared = info.get("type") if isinstance(info, dict) else None
    if isinstance(declared, dict) and all(
        isinstance(declared.get(k), str) for k in ("group", "artifact", "version")
    ):
        return {k: declared[k] for k in ("group", "artifact", "version")}
    return dict(TYPES.get(service.kind, TYPES[Kind.HTTP]))


def external_service(service: Service) -> dict[str, Any]:
    state: ServiceState | None = getattr(service, "state", None)
    origin = urlsplit(service.url)
    info = state.last_service_info if state is not None else None
    version = info.get("version") if isinstance(info, dict) else None
    status = state.status if state is not None else Status.UNKNOWN
    return {
        "id": str(service.pk),
        "name": service.name,
        "type": _type_of(service, state),
        "description": service.description,
        "organization": {
            "name": service.organization.name if service.organization else SHARED,
            "url": f"{origin.scheme}://{origin.netloc}",
        },
        "createdAt": service.created_at.isoformat(),
        "updatedAt": service.updated_at.isoformat(),
        "version": version if isinstance(version, str) else "unknown",
        "url": service.url,
        "health": {
            "status": status,
            "latency_ms": state.last_latency_ms if state is not None else None,
            "last_checked_at": state.last_checked_at.isoformat()
            if state is not None and state.last_checked_at
            else None,
            "conformant": state.conformant if state is not None else None,
            "usable": bool(
                service.enabled
                and status in selectors.USABLE
                and state is not None
                and state.breaker_until is None
            ),
        },
    }


class _Filter(serializers.Serializer[Any]):
    usable = serializers.BooleanField(required=False, allow_null=True, default=None)
    type = serializers.CharField(required=False, max_length=200)


def _services(request: Request) -> list[Service]:
    query = _Filter(data=request.query_params)
    query.is_valid(raise_exception=True)
    qs = selectors.service_list(
        actor_from_request(request), usable=query.validated_data["usable"]
    ).select_related("organization")
    wanted = query.validated_data.get("type")
    rows = list(qs)
    if wanted:  # "group:artifact:version", or the artifact alone
        rows = [s for s in rows if wanted in _type_names(_type_of(s, getattr(s, "state", None)))]
    return rows


def _type_names(kind: dict[str, str]) -> set[str]:
    return {kind["artifact"], f"{kind['group']}:{kind['artifact']}:{kind['version']}"}


@extend_schema(exclude=True)
@api_view(["GET"])
def services(request: Request) -> Response:
    return Response([external_service(s) for s in _services(request)])


@extend_schema(exclude=True)
@api_view(["GET"])
def service_detail(request: Request, service_id: str) -> Response:
    if not service_id.isascii() or not service_id.isdigit() or len(service_id) > 18:
        raise NotFound("No such service.")
    service = selectors.service_get(actor_from_request(request), int(service_id))
    return Response(external_service(service))


@extend_schema(exclude=True)
@api_view(["GET"])
def service_types(request: Request) -> Response:
    seen: dict[tuple[str, str, str], dict[str, str]] = {}
    for service in _services(request):
        kind = _type_of(service, getattr(service, "state", None))
        seen[(kind["group"], kind["artifact"], kind["version"])] = kind
    return Response([seen[key] for key in sorted(seen)])


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def service_info(request: Request) -> Response:
    """This registry's own service-info."""
    return Response(
        {
            "id": "org.simlab.registry",
            "name": "SimLab service registry",
            "type": {"group": "org.ga4gh", "artifact": "service-registry", "version": "1.0.0"},
            "description": "Registered compute services with their health.",
            "organization": {"name": "SimLab", "url": request.build_absolute_uri("/").rstrip("/")},
            "version": "1.0.0",
        }
    )
