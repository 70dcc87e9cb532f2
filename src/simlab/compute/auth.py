"""FastAPI authentication: the same credential checks as DRF, never a call to Django."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from simlab.accounts import credentials
from simlab.compute.signed import SIGNED_ACTOR_STATE
from simlab.core.actor import Actor, Source
from simlab.core.errors import NotAuthenticated

_bearer = HTTPBearer(auto_error=False, description="A JWT from /api/v1/auth/token/ or an API key")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def current_actor(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Actor:
    """Dependency for every authenticated route: raises on failure, never returns None."""
    signed: Actor | None = getattr(request.state, SIGNED_ACTOR_STATE, None)
    if signed is not None:  # verified by SignedRequestMiddleware: Django's proxy acting for a user
        return signed
    token = bearer.credentials if bearer is not None else api_key
    if not token:
        raise NotAuthenticated(
            "Send 'Authorization: Bearer <JWT or API key>' or 'X-API-Key: <key>'."
        )
    ip = request.client.host if request.client else None
    return await credentials.actor_from_token(token, source=Source.COMPUTE, ip=ip)


CurrentActor = Annotated[Actor, Depends(current_actor)]


async def optional_actor(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Actor | None:
    """For routes that answer anyone and tell a known caller more: None when anonymous
    or when the credential does not hold."""
    try:
        return await current_actor(request, bearer, api_key)
    except NotAuthenticated:
        return None


OptionalActor = Annotated[Actor | None, Depends(optional_actor)]
