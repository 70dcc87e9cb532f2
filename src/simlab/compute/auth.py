"""FastAPI authentication: the same credential checks as DRF, never a call to Django."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from simlab.accounts import credentials
from simlab.compute.orm import run_orm
from simlab.core.actor import Actor, Source
from simlab.core.context import current_request_id
from simlab.core.errors import NotAuthenticated

_bearer = HTTPBearer(auto_error=False, description="A JWT from /api/v1/auth/token/ or an API key")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def actor_from_token(token: str, *, source: Source, ip: str | None) -> Actor:
    """Actor for a bearer JWT (verified locally, no I/O) or an API key (one DB lookup)."""
    request_id = current_request_id()
    if credentials.is_api_key(token):
        key = await run_orm(credentials.authenticate_api_key, token)
        return credentials.actor_from_api_key(key, source=source, request_id=request_id, ip=ip)
    claims = credentials.verify_access_token(token)
    return credentials.actor_from_claims(claims, source=source, request_id=request_id, ip=ip)


async def current_actor(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Actor:
    """Dependency for every authenticated route: raises on failure, never returns None."""
    token = bearer.credentials if bearer is not None else api_key
    if not token:
        raise NotAuthenticated(
            "Send 'Authorization: Bearer <JWT or API key>' or 'X-API-Key: <key>'."
        )
    ip = request.client.host if request.client else None
    return await actor_from_token(token, source=Source.COMPUTE, ip=ip)


CurrentActor = Annotated[Actor, Depends(current_actor)]
