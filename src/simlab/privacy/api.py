"""REST doors for data rights: one's own export, an organisation's export, erasure."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import IO, Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from simlab.accounts.authentication import actor_from_request
from simlab.core.actor import Actor
from simlab.core.files import file_response
from simlab.privacy import selectors, services
from simlab.web.api_fields import StrictSerializer

_ZIP = OpenApiResponse(OpenApiTypes.BINARY, description="A zip of JSON files and result files.")


def _zip_response(filename: str, write: Callable[[IO[bytes]], Any]) -> StreamingHttpResponse:
    """The archive `write` produces, spooled to a temporary file (exports hold result
    files: too big to build in memory) and streamed from there."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it once sent
    try:
        write(out)
        size = out.tell()
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return file_response(
        out, size=size, content_type="application/zip", filename=filename, as_attachment=True
    )


@extend_schema(operation_id="me_export", responses={200: _ZIP})
@api_view(["GET"])
def me_export(request: Request) -> StreamingHttpResponse:
    """Everything of yours: profile, memberships, keys (no secrets), conversations, the
    simulations and sweeps you made with their result files, your audit trail."""
    actor = actor_from_request(request)
    assert actor.user_id is not None  # a request's actor is a user
    user_id = actor.user_id
    return _zip_response(
        f"simlab-export-user-{user_id}.zip",
        lambda out: services.user_export(actor, user_id=user_id, out=out),
    )


@extend_schema(operation_id="organizations_export", responses={200: _ZIP})
@api_view(["GET"])
def organization_export(request: Request, pk: int) -> StreamingHttpResponse:
    """The organisation's projects, simulations with result files, sweeps, registry
    services, members (username and role) and audit trail (owners and admins)."""
    actor: Actor = actor_from_request(request)
    return _zip_response(
        f"simlab-export-organization-{pk}.zip",
        lambda out: services.organization_export(actor, organization_id=int(pk), out=out),
    )


class EraseSerializer(StrictSerializer):
    dry_run = serializers.BooleanField(default=True)


@extend_schema(
    operation_id="users_erase",
    request=EraseSerializer,
    responses={
        200: inline_serializer(
            "ErasurePlan",
            {
                "user_id": serializers.IntegerField(),
                "pseudonym": serializers.CharField(),
                "dry_run": serializers.BooleanField(),
                "organizations_deleted": serializers.ListField(child=serializers.IntegerField()),
                "projects_deleted": serializers.IntegerField(),
                "simulations_deleted": serializers.IntegerField(),
                "memberships_removed": serializers.IntegerField(),
                "api_keys_revoked": serializers.IntegerField(),
                "conversations_deleted": serializers.IntegerField(),
                "audit_rows_kept": serializers.IntegerField(),
                "columns": serializers.DictField(child=serializers.IntegerField()),
                "blockers": serializers.ListField(child=serializers.CharField()),
            },
        )
    },
)
@api_view(["POST"])
def user_erase(request: Request, pk: int) -> Response:
    """Erase a person (platform administrators). `dry_run` (the default) only says what
    would go, what would be pseudonymised and what blocks it."""
    data = EraseSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    plan = services.user_erase(
        actor_from_request(request), user_id=int(pk), dry_run=data.validated_data["dry_run"]
    )
    return Response(plan.as_dict())


class RetentionSerializer(StrictSerializer):
    results_days = serializers.IntegerField(
        min_value=1, max_value=services.MAX_RETENTION_DAYS, allow_null=True, required=False
    )
    raw_logs_days = serializers.IntegerField(
        min_value=1, max_value=services.MAX_RETENTION_DAYS, allow_null=True, required=False
    )
    check_history_days = serializers.IntegerField(
        min_value=1, max_value=services.MAX_RETENTION_DAYS, allow_null=True, required=False
    )


@extend_schema(
    methods=["GET"], operation_id="organizations_retention_get", responses=RetentionSerializer
)
@extend_schema(
    methods=["PUT"],
    operation_id="organizations_retention_set",
    request=RetentionSerializer,
    responses=RetentionSerializer,
)
@extend_schema(
    methods=["PATCH"],
    operation_id="organizations_retention_update",
    request=RetentionSerializer,
    responses=RetentionSerializer,
)
@api_view(["GET", "PUT", "PATCH"])
def organization_retention(request: Request, pk: int) -> Response:
    """The organisation's retention periods in days (null keeps for ever); owners and
    admins change them."""
    actor = actor_from_request(request)
    if request.method == "GET":
        policy = selectors.retention_get(actor, organization_id=int(pk))
    else:
        data = RetentionSerializer(data=request.data, partial=request.method == "PATCH")
        data.is_valid(raise_exception=True)
        days = dict(data.validated_data)
        if request.method == "PUT":  # the whole policy: a period left out keeps for ever
            days = {kind: days.get(kind) for kind in services.RETENTION_KINDS}
        policy = services.retention_set(actor, organization_id=int(pk), days=days)
    return Response({kind: getattr(policy, kind) for kind in services.RETENTION_KINDS})
