"""Verification of signed requests from Django's proxy (see `simlab.core.signing`).

An ASGI middleware in front of the FastAPI app. A request that carries any signature
header must verify in full (else 401 with the reason's code) and then acts as the signed
user; its body is read (up to a limit), hashed and handed on unchanged. A request with
no signature headers goes on to the routes' own JWT/API-key checks, unless the service
is configured to accept signed requests only (compute reachable only through Django).
Liveness (`/compute/health`) is never checked, so orchestrators can probe it.
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings

from simlab.core.actor import Actor, Source
from simlab.core.asgi import ASGIApp, Message, Receive, Scope, Send
from simlab.core.errors import ApplicationError, NotAuthenticated
from simlab.core.signing import (
    EMPTY_BODY_SHA256,
    VERIFIED_HEADER_KEYS,
    MemoryNonceStore,
    NonceStore,
    RedisNonceStore,
    SignedRequest,
    has_signature,
    verify,
)

SIGNED_ACTOR_STATE = "signed_actor"
UNCHECKED_PATHS = frozenset({"/compute/health"})


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"


def _nonce_store() -> NonceStore:
    redis_url: str | None = settings.REDIS_URL
    if redis_url:
        return RedisNonceStore(redis_url)
    return MemoryNonceStore()


class SignedRequestMiddleware:
    def __init__(self, app: ASGIApp, *, require_signature: bool | None = None) -> None:
        self.app = app
        self._require = require_signature
        self._nonces: NonceStore | None = None

    @property
    def require_signature(self) -> bool:
        if self._require is not None:
            return self._require
        return bool(getattr(settings, "SIMLAB_COMPUTE_REQUIRE_SIGNATURE", False))

    @property
    def nonces(self) -> NonceStore:
        if self._nonces is None:
            self._nonces = _nonce_store()
        return self._nonces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] in UNCHECKED_PATHS:
            await self.app(scope, receive, send)
            return
        headers = _verified_headers(scope)
        signed = has_signature(headers)
        if not signed and not self.require_signature:
            # Unsigned bodies are bounded by the same limit (413 in the envelope).
            try:
                body = await _read_body(receive, settings.SIMLAB_SERVICE_MAX_BODY_BYTES)
            except ApplicationError as exc:
                await _send_error(send, exc)
                return
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            body = await _read_body(receive, settings.SIMLAB_SERVICE_MAX_BODY_BYTES)
            actor = await self._verify(scope, headers, hashlib.sha256(body).hexdigest())
        except ApplicationError as exc:
            await _send_error(send, exc)
            return
        scope.setdefault("state", {})[SIGNED_ACTOR_STATE] = actor
        await self.app(scope, _replay(body, receive), send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A handshake is checked as a GET with no body: signed, it must verify; unsigned,
        it is refused (403, before any message) where signatures are required."""
        headers = _verified_headers(scope)
        if not has_signature(headers):
            if self.require_signature:
                await receive()  # websocket.connect
                await send(
                    {"type": "websocket.close", "code": 1008, "reason": "signature required"}
                )
                return
            await self.app(scope, receive, send)
            return
        try:
            actor = await self._verify(scope, headers, EMPTY_BODY_SHA256)
        except ApplicationError as exc:
            await _refuse_handshake(receive, send, exc.message)
            return
        scope.setdefault("state", {})[SIGNED_ACTOR_STATE] = actor
        await self.app(scope, receive, send)

    async def _verify(self, scope: Scope, headers: dict[str, str], body_sha256: str) -> Actor:
        client = scope.get("client")
        return await verify(
            settings.SIMLAB_SERVICE_SIGNING_KEY,
            SignedRequest(
                method=scope.get("method", "GET"),
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body_sha256=body_sha256,
            ),
            nonces=self.nonces,
            max_age_s=settings.SIMLAB_SERVICE_SIGNATURE_MAX_AGE_S,
            source=Source.API,
            ip=client[0] if client else None,
        )


async def _refuse_handshake(receive: Receive, send: Send, reason: str) -> None:
    await receive()  # websocket.connect; a close before the accept is a 403
    await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})


def _verified_headers(scope: Scope) -> dict[str, str]:
    # Only the headers the verifier reads: decoding every header of every request was a
    # tenth of a proxied request's cost.
    return {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in scope["headers"]
        if k in VERIFIED_HEADER_KEYS
    }


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise NotAuthenticated("The client went away.", code="client_disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"A request body may be at most {limit} bytes.",
                details={"max_bytes": limit},
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect

    return replay


async def _send_error(send: Send, exc: ApplicationError) -> None:
    payload = json.dumps(exc.envelope()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if exc.status_code == 401:
        headers.append((b"www-authenticate", b'SimLab-HMAC realm="simlab"'))
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
