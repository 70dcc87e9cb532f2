"""REST doors for identity: who am I, organisations, API keys, JWT obtain/refresh."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from simlab.accounts import selectors, services
from simlab.accounts.authentication import actor_from_request
from simlab.accounts.models import ApiKey, Invitation, Organization, Role
from simlab.accounts.tokens import SimLabTokenObtainPairSerializer
from simlab.core.actor import SCOPES
from simlab.core.errors import ApplicationError
from simlab.web.api_fields import ObjectIdField, StrictSerializer


def _require_signing_key() -> None:
    if not settings.SIMPLE_JWT["SIGNING_KEY"]:
        raise ApplicationError(
            "This process only verifies tokens; ask the web service for one.",
            code="token_signing_unavailable",
            status_code=503,
        )


class TokenObtainView(TokenObtainPairView):
    """Exchange username and password for an access and a refresh JWT (RS256)."""

    serializer_class = SimLabTokenObtainPairSerializer
    throttle_scope = "auth"

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _require_signing_key()
        return super().post(request, *args, **kwargs)


class TokenRefreshViewV1(TokenRefreshView):
    """Exchange a refresh token for a new access token (the refresh token rotates)."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _require_signing_key()
        return super().post(request, *args, **kwargs)


class OrganizationSerializer(serializers.ModelSerializer[Organization]):
    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at"]


class OrganizationCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)


class InvitationSerializer(serializers.ModelSerializer[Invitation]):
    organization = serializers.IntegerField(source="organization_id", read_only=True)
    invited_by = serializers.CharField(
        source="invited_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Invitation
        fields = [
            "id",
            "organization",
            "email",
            "role",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
        ]


class InvitationCreateSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class OrganizationViewSet(viewsets.GenericViewSet[Organization]):
    lookup_value_converter = "id"  # simlab.core.ids: ASCII digits, 64-bit
    serializer_class = OrganizationSerializer
    queryset = Organization.objects.none()  # rows come from the selector; this types the schema
    ordering_fields = ["name", "id"]

    def get_queryset(self) -> Any:
        return selectors.organization_list(actor_from_request(self.request))

    @extend_schema(operation_id="organizations_list")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(OrganizationSerializer(page, many=True).data)

    @extend_schema(
        operation_id="organizations_create",
        request=OrganizationCreateSerializer,
        responses={201: OrganizationSerializer},
    )
    def create(self, request: Request) -> Response:
        data = OrganizationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organization = services.organization_create(
            actor_from_request(request), name=data.validated_data["name"]
        )
        return Response(OrganizationSerializer(organization).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        operation_id="organizations_invitations_list",
        request=None,
        responses={200: InvitationSerializer(many=True)},
    )
    @extend_schema(
        methods=["POST"],
        operation_id="organizations_invitations_create",
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer},
        description="Invite an e-mail address with a role; the sign-up link goes by e-mail.",
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def invitations(self, request: Request, pk: str) -> Response:
        actor = actor_from_request(request)
        if request.method == "GET":
            rows = selectors.invitation_list(actor, int(pk))
            return Response(InvitationSerializer(rows, many=True).data)
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invitation_create(
            actor,
            organization_id=int(pk),
            email=data.validated_data["email"],
            role=data.validated_data["role"],
            site_url=request.build_absolute_uri("/"),
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="organizations_invitations_withdraw",
        request=None,
        responses={204: None},
        description="Withdraw an open invitation: its link stops working at once.",
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path="invitations/<id:invitation_id>",
        url_name="invitation-withdraw",
    )
    def withdraw_invitation(self, request: Request, pk: str, invitation_id: int) -> Response:
        services.invitation_withdraw(
            actor_from_request(request), organization_id=int(pk), invitation_id=invitation_id
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    organization = serializers.IntegerField(source="organization_id", read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "organization",
            "scopes",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]


class ApiKeyCreateSerializer(StrictSerializer):
    organization = ObjectIdField()
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SCOPES)),
        default=["read", "write", "compute"],
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyViewSet(viewsets.GenericViewSet[ApiKey]):
    lookup_value_converter = "id"  # simlab.core.ids: ASCII digits, 64-bit
    serializer_class = ApiKeySerializer
    queryset = ApiKey.objects.none()  # rows come from the selector; this types the schema
    ordering_fields = ["name", "created_at", "id"]

    def get_queryset(self) -> Any:
        return selectors.api_key_list(actor_from_request(self.request))

    @extend_schema(operation_id="api_keys_list")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ApiKeySerializer(page, many=True).data)

    @extend_schema(
        operation_id="api_keys_create",
        request=ApiKeyCreateSerializer,
        responses={
            201: inline_serializer(
                "ApiKeyCreated",
                {"key": serializers.CharField(help_text="Shown once; store it now.")},
            )
        },
        description="Create an API key. The full key is in this response only.",
    )
    def create(self, request: Request) -> Response:
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw = services.api_key_create(
            actor_from_request(request),
            organization_id=data.validated_data["organization"],
            name=data.validated_data["name"],
            scopes=data.validated_data["scopes"],
            expires_at=data.validated_data.get("expires_at"),
        )
        return Response({**ApiKeySerializer(key).data, "key": raw}, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="api_keys_delete", responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.api_key_delete(actor_from_request(request), key_id=int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="api_keys_revoke", request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        key = services.api_key_revoke(actor_from_request(request), key_id=int(pk))
        return Response(ApiKeySerializer(key).data)


@extend_schema(
    operation_id="me",
    responses={
        200: OpenApiResponse(
            inline_serializer(
                "Me",
                {
                    "id": serializers.IntegerField(),
                    "username": serializers.CharField(),
                    "organization": serializers.IntegerField(allow_null=True),
                    "scopes": serializers.ListField(child=serializers.CharField()),
                },
            )
        )
    },
)
@api_view(["GET"])
def me(request: Request) -> Response:
    """The authenticated actor as the API sees it."""
    actor = actor_from_request(request)
    return Response(
        {
            "id": actor.user_id,
            "username": actor.username,
            "organization": actor.organization_id,
            "scopes": sorted(actor.scopes),
        }
    )
