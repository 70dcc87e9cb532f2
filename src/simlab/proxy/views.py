"""`/api/v1/compute/<path>`: Django authenticates, signs, and streams compute's answer back.

The view is async end to end: the request goes out through the process's pooled client
(`simlab.proxy.upstream`), and the upstream body is relayed chunk by chunk as it arrives,
never read whole. When the client disconnects, Django cancels the relay and the upstream
response is closed with it. The forwarded request carries no user credential: it is
HMAC-signed with the acting user (`simlab.core.signing`), which compute verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from importlib import import_module
from typing import Any
from urllib.parse import unquote

import structlog
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import auth
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from simlab.accounts import credentials
from simlab.accounts.actors import actor_of
from simlab.accounts.authentication import client_ip
from simlab.core.actor import Actor, Source
from simlab.core.context import current_request_id, new_request_id
from simlab.core.errors import (
    ApplicationError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from simlab.core.metrics import PROXY_UPSTREAM_IN_USE, PROXY_UPSTREAM_REQUESTS
from simlab.core.orm import run_orm
from simlab.core.signing import EMPTY_BODY_SHA256, sign
from simlab.proxy.upstream import UpstreamResponse, get_upstream

log = structlog.get_logger(__name__)

# What the client may tell compute (header name, its WSGI key); credentials and cookies
# stay here, and hop-by-hop headers belong to each connection. Read from META: building
# `request.headers` costs more than the rest of the view's header work together.
FORWARDED_REQUEST_HEADERS = (
    ("Accept", "HTTP_ACCEPT"),
    ("Accept-Encoding", "HTTP_ACCEPT_ENCODING"),
    ("Content-Type", "CONTENT_TYPE"),
    ("Last-Event-ID", "HTTP_LAST_EVENT_ID"),  # resuming a server-sent event stream
    ("User-Agent", "HTTP_USER_AGENT"),
)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "x-request-id",  # the request-id middleware sets ours
        # Each server stamps its own; relayed, the client would see two of each.
        "date",
        "server",
    }
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"


def _error_response(exc: ApplicationError) -> JsonResponse:
    return JsonResponse(exc.envelope(), status=exc.status_code)


def _csrf_refused(request: HttpRequest) -> bool:
    # A session is a browser's credential: its unsafe requests need the CSRF token.
    check = CsrfViewMiddleware(lambda r: None)  # type: ignore[arg-type]
    return check.process_view(request, None, (), {}) is not None  # type: ignore[arg-type]


async def _session_user(request: HttpRequest) -> Any:
    """The session cookie's user (the proxy's middleware has no session or auth step:
    only callers without a token need one). Through `run_orm`, as all ORM work here."""
    if not hasattr(request, "session"):
        store = import_module(settings.SESSION_ENGINE).SessionStore
        request.session = store(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    return await run_orm(auth.get_user, request)


async def proxy_actor(request: HttpRequest) -> Actor:
    """The caller, by bearer JWT or API key (as on every API route), else by session."""
    ip = client_ip(request)
    meta = request.META
    token = credentials.bearer_token(meta.get("HTTP_AUTHORIZATION")) or meta.get("HTTP_X_API_KEY")
    if token:
        return await credentials.actor_from_token(token, source=Source.API, ip=ip)
    user = await _session_user(request)
    if not user.is_authenticated:
        raise NotAuthenticated(
            "Send 'Authorization: Bearer <JWT or API key>' or 'X-API-Key: <key>'."
        )
    if request.method in UNSAFE_METHODS and _csrf_refused(request):
        raise PermissionDenied("CSRF check failed.", code="csrf_failed")
    return actor_of(
        user_id=user.pk,
        username=user.get_username(),
        is_superuser=user.is_superuser,
        source=Source.API,
        ip=ip,
    )


def confined_upstream_path(path: str) -> str:
    """compute's path for the client's `/api/v1/compute/<path>`, which must stay under it.

    Django has decoded the path once; a dot segment, spelled plainly, percent-encoded
    again or behind a backslash, would be resolved by the upstream client or server and
    could reach any route of the host (`%2e%2e/admin/`): refused as not found.
    """
    unfolded = unquote(path).replace("\\", "/")
    if any(segment in {".", ".."} for segment in unfolded.split("/")):
        raise NotFound("No such compute path.", details={"path": path})
    return f"/compute/{path}"


class UpstreamRelay:
    """The upstream body as Django's streaming content, released exactly once: when the
    stream ends, or by the response's close() when the client left before the first chunk
    (an async generator that never started never runs its `finally`, and one abandoned
    mid-stream runs it only when collected). Django calls close() on every response."""

    def __init__(self, response: UpstreamResponse) -> None:
        self._response = response
        self._released = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.iter_raw():
                yield chunk
        except ApplicationError as exc:
            # Headers are gone already: the only honest signal left is a broken stream.
            log.warning("proxy_upstream_broke", code=exc.code, reason=exc.details)
            raise
        finally:
            await self.release()

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        PROXY_UPSTREAM_IN_USE.dec()
        await self._response.aclose()

    def close(self) -> None:
        # Called by HttpResponse.close() in a worker thread of the request's event loop.
        if not self._released:
            async_to_sync(self.release)()


@csrf_exempt  # tokens need no CSRF; a session's unsafe request is checked in proxy_actor
async def compute_proxy(request: HttpRequest, path: str) -> HttpResponseBase:
    """Forward `METHOD /api/v1/compute/<path>?<query>` to compute's `/compute/<path>`."""
    try:
        actor = await proxy_actor(request)
        try:
            body = request.body
        except RequestDataTooBig:
            raise _PayloadTooLarge(
                "The request body is too large to forward.",
                details={"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
            ) from None
        method = request.method or "GET"
        upstream_path = confined_upstream_path(path)
        query = request.META.get("QUERY_STRING", "")
        headers = {
            name: value
            for name, key in FORWARDED_REQUEST_HEADERS
            if (value := request.META.get(key))
        }
        headers.update(
            sign(
                settings.SIMLAB_SERVICE_SIGNING_KEY,
                method=method,
                path=upstream_path,
                query=query,
                body_sha256=hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_SHA256,
                actor=actor,
                request_id=current_request_id() or new_request_id(),
            )
        )
        url = settings.SIMLAB_COMPUTE_URL + upstream_path + (f"?{query}" if query else "")
        PROXY_UPSTREAM_IN_USE.inc()
        try:
            upstream = await get_upstream().send(method, url, headers, body)
        except BaseException:
            PROXY_UPSTREAM_IN_USE.dec()
            PROXY_UPSTREAM_REQUESTS.labels("failed").inc()
            raise
        PROXY_UPSTREAM_REQUESTS.labels("answered").inc()
    except ApplicationError as exc:
        if exc.status_code >= 500:
            log.warning("proxy_upstream_failed", code=exc.code, reason=exc.details, path=path)
        return _error_response(exc)
    response = StreamingHttpResponse(UpstreamRelay(upstream), status=upstream.status_code)
    for name, value in upstream.headers:
        if name.lower() not in HOP_BY_HOP:
            response.headers[name] = value
    return response
