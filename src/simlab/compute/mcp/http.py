"""`/compute/mcp`: the MCP server over streamable HTTP, inside the compute app.

- Authentication is SimLab's own (JWT or API key, `actor_from_token`) plugged in as the
  SDK's token verifier; a request without a valid one gets the SDK's 401 with a
  `WWW-Authenticate` pointer to the protected-resource metadata, served at
  `/.well-known/oauth-protected-resource/compute/mcp`.
- Stateless HTTP: no session lives in a process, and the SDK's request-state key is
  derived from the site secret, so any worker answers any request (no sticky sessions).
  Progress notifications ride the call's own SSE response stream; a call that asks
  for none gets one JSON body.
- The session manager runs in the compute app's lifespan (a mounted app's lifespan
  never runs by itself). Each lifespan gets a fresh SDK app (a session manager runs
  once), kept per event loop, so a process may serve the app from more than one loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import RequestStateSecurity
from mcp.server.transport_security import (
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    TransportSecuritySettings,
)
from pydantic import PrivateAttr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simlab.accounts.credentials import actor_from_token
from simlab.compute.mcp.server import SimLabMCP
from simlab.config.env import SimLabEnv, get_env
from simlab.core.actor import Actor, Source
from simlab.core.errors import ApplicationError, NotAuthenticated

PATH = "/compute/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource" + PATH
# Every call reads something; what else a caller may do is the services' business,
# checked per action against the credential's scopes (simlab.core.actor.SCOPES).
REQUIRED_SCOPES = ["read"]

# The client address of the request being authenticated: the SDK's verifier sees only
# the token, and the actor (audit rows) carries the IP.
_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "simlab_mcp_client_ip", default=None
)


class ActorToken(AccessToken):
    """The SDK's view of a verified credential, carrying the SimLab actor it stands for."""

    _actor: Actor | None = PrivateAttr(default=None)

    @property
    def actor(self) -> Actor:
        if self._actor is None:
            raise NotAuthenticated("No SimLab actor for this token.")
        return self._actor


class SimLabTokenVerifier:
    """The SDK's TokenVerifier over SimLab's credential check: JWTs verified locally with
    the public key, API keys by one lookup; a credential that does not hold is None
    (the SDK answers 401)."""

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            actor = await actor_from_token(token, source=Source.MCP, ip=_client_ip.get())
        except NotAuthenticated:
            return None
        client_id = f"apikey:{actor.api_key_id}" if actor.api_key_id else f"user:{actor.user_id}"
        verified = ActorToken(
            token=token,
            client_id=client_id,
            scopes=sorted(actor.scopes),
            subject=str(actor.user_id),
        )
        verified._actor = actor
        return verified


def actor_of_request() -> Actor:
    """The actor the request's credential stands for (set by the SDK's auth middleware,
    carried into the handler with the request's context)."""
    verified = get_access_token()
    if not isinstance(verified, ActorToken):
        raise NotAuthenticated("Send 'Authorization: Bearer <JWT or API key>'.")
    return verified.actor


def state_key(env: SimLabEnv) -> bytes:
    """The same on every worker: explicit, or derived from (never equal to) the secret."""
    if env.mcp.state_key:
        return hashlib.sha256(env.mcp.state_key.encode()).digest()
    return hmac.new(env.secret_key.encode(), b"simlab.mcp-request-state", "sha256").digest()


def transport_security(env: SimLabEnv) -> TransportSecuritySettings:
    """DNS-rebinding protection from SIMLAB_ALLOWED_HOSTS (any port), off with `*`."""
    hosts = [h for h in env.allowed_hosts if h and not h.startswith(".")]
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    origins = [f"{scheme}://{host}:*" for host in hosts for scheme in ("http", "https")]
    origins += [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*hosts, *(f"{host}:*" for host in hosts)],
        allowed_origins=[*origins, *env.csrf_trusted_origins],
    )


def build_http_server(env: SimLabEnv | None = None) -> SimLabMCP:
    env = env or get_env()
    public = env.mcp.public_url.rstrip("/")
    return SimLabMCP(
        actor_of_request,
        token_verifier=SimLabTokenVerifier(),
        auth=AuthSettings(
            issuer_url=public,  # a string keeps its exact form (no trailing slash added)
            resource_server_url=f"{public}{PATH}",
            required_scopes=REQUIRED_SCOPES,
            # SimLab's tokens are for the whole site (audience `simlab`), checked by the
            # verifier; they carry no RFC 8707 resource to compare.
            validate_token_resource=False,
        ),
        request_state_security=RequestStateSecurity(keys=[state_key(env)]),
        log_level="WARNING",
    )


class MCPEndpoint:
    """The ASGI app routed at PATH and METADATA_PATH. `lifespan()` builds the SDK apps and
    runs their session managers; requests go to the ones running on their event loop.

    Two SDK apps serve the same tools: a POST whose message asks for progress (a
    `progressToken` in its `_meta`) is answered as an SSE stream that carries the
    notifications; every other POST as one JSON body, which saves the stream's set-up
    and framing on both sides (the protocol lets the server choose per request).
    """

    def __init__(self) -> None:
        self._running: dict[asyncio.AbstractEventLoop, _Apps] = {}

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        env = get_env()
        security = transport_security(env)
        streaming, plain = build_http_server(env), build_http_server(env)
        apps = _Apps(
            streaming=streaming.streamable_http_app(
                streamable_http_path=PATH,
                stateless_http=True,
                json_response=False,
                transport_security=security,
            ),
            plain=plain.streamable_http_app(
                streamable_http_path=PATH,
                stateless_http=True,
                json_response=True,
                transport_security=security,
            ),
        )
        loop = asyncio.get_running_loop()
        async with streaming.session_manager.run(), plain.session_manager.run():
            self._running[loop] = apps
            try:
                yield
            finally:
                self._running.pop(loop, None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        apps = self._running.get(asyncio.get_running_loop())
        if apps is None:
            await _send_unavailable(send)
            return
        client = scope.get("client")
        token = _client_ip.set(client[0] if client else None)
        try:
            app = apps.streaming
            if scope["type"] == "http" and scope["method"] == "POST":
                received, body = await _read_body(receive)
                receive = _replaying(received, receive)
                if body is not None and not _asks_for_progress(body):
                    app = apps.plain
            await app(scope, receive, send)
        finally:
            _client_ip.reset(token)


@dataclass(frozen=True)
class _Apps:
    streaming: ASGIApp  # answers in SSE: progress notifications ride the stream
    plain: ASGIApp  # answers in one JSON body


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages as read, and its body; None for a body over the SDK's
    limit (the SDK then answers 413 from the replayed messages and the rest)."""
    received: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return received, None  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > DEFAULT_MAX_REQUEST_BODY_SIZE:
            return received, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return received, b"".join(chunks)


def _replaying(received: list[Message], receive: Receive) -> Receive:
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _asks_for_progress(body: bytes) -> bool:
    """True unless the body is a single JSON-RPC message without a progress token
    (anything odd goes to the streaming app, whose answer the SDK shapes)."""
    try:
        message = json.loads(body)
    except ValueError:
        return True
    if not isinstance(message, dict):
        return True
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and meta.get("progressToken") is not None


async def _send_unavailable(send: Send) -> None:
    """Only before start-up or after shut-down of the app's lifespan."""
    exc = ApplicationError(
        "The MCP server is not running in this process.", code="unavailable", status_code=503
    )
    payload = json.dumps(exc.envelope()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


endpoint = MCPEndpoint()
