"""DRF authentication over the shared credential checks, and the Actor of a Django request."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from simlab.accounts import credentials
from simlab.accounts.actors import FULL_RIGHTS, CredentialContext, actor_of, key_context
from simlab.accounts.models import User
from simlab.core.actor import Actor, Source
from simlab.core.errors import ApplicationError
from simlab.platform.db import get_by_key


def _refuse(error: ApplicationError) -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed(detail=error.message, code=error.code)


class BearerAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <JWT>` or `Authorization: Bearer slk_…` (API key)."""

    def authenticate(self, request: Request) -> tuple[User, CredentialContext] | None:
        try:
            token = credentials.bearer_token(request.META.get("HTTP_AUTHORIZATION"))
            if token is None:
                return None
            if credentials.is_api_key(token):
                return _api_key_login(token)
            claims = credentials.verify_access_token(token)
        except ApplicationError as exc:
            raise _refuse(exc) from None
        user = get_by_key(User, pk=int(claims["user_id"]), is_active=True)
        if user is None:
            raise exceptions.AuthenticationFailed("User not found or inactive.", "user_inactive")
        return user, CredentialContext()

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="simlab"'


class ApiKeyHeaderAuthentication(authentication.BaseAuthentication):
    """`X-API-Key: slk_…`."""

    def authenticate(self, request: Request) -> tuple[User, CredentialContext] | None:
        raw = request.META.get("HTTP_X_API_KEY")
        if not raw:
            return None
        try:
            return _api_key_login(raw)
        except ApplicationError as exc:
            raise _refuse(exc) from None

    def authenticate_header(self, request: Request) -> str:
        return "X-API-Key"


def _api_key_login(raw: str) -> tuple[User, CredentialContext]:
    key = credentials.authenticate_api_key(raw)
    return key.user, key_context(key)


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def actor_from_request(request: HttpRequest | Request, *, source: Source = Source.API) -> Actor:
    """The Actor for an authenticated Django or DRF request."""
    user = request.user
    if not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    context = getattr(request, "auth", None)
    if not isinstance(context, CredentialContext):
        context = FULL_RIGHTS  # session login: the user's full rights
    return actor_of(
        user_id=user.pk,
        username=user.get_username(),
        is_superuser=user.is_superuser,
        context=context,
        source=source,
        ip=client_ip(request),
    )
