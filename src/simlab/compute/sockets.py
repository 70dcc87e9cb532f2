"""What every SimLab WebSocket shares: the subprotocol, authentication, JSON messages, closing.

Authentication comes before anything else is read: `?token=<JWT or API key>` in the URL,
`Sec-WebSocket-Protocol: simlab.v1, bearer.<token>`, or a first message
`{"type": "auth", "token": "..."}`. A missing, bad or expired token closes with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from simlab.accounts.credentials import actor_from_token
from simlab.compute.realtime.runs import Limits
from simlab.compute.signed import SIGNED_ACTOR_STATE
from simlab.core.actor import Actor, Source
from simlab.core.errors import NotAuthenticated, ValidationFailed

SUBPROTOCOL = "simlab.v1"
_BEARER_PROTOCOL = "bearer."
# A socket that offered no token in its URL or subprotocol may send it first, this soon.
AUTH_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 5.0


async def accept(websocket: WebSocket) -> None:
    """Accept, echoing `simlab.v1` when the client offered it (browsers require an echo)."""
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)


def _offered_token(websocket: WebSocket) -> str | None:
    token = websocket.query_params.get("token")
    if token:
        return token
    for protocol in websocket.scope.get("subprotocols", []):
        if protocol.startswith(_BEARER_PROTOCOL):
            return str(protocol[len(_BEARER_PROTOCOL) :])
    return None


async def receive_json(websocket: WebSocket, limits: Limits) -> dict[str, Any]:
    """The next message as a JSON object; ValidationFailed for anything else."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        raise ValidationFailed("Send JSON text messages, not binary ones.", code="bad_message")
    if len(text.encode()) > limits.max_message_bytes:
        raise ValidationFailed(
            f"Messages may be at most {limits.max_message_bytes} bytes.",
            code="message_too_big",
            details={"max_message_bytes": limits.max_message_bytes},
        )
    try:
        payload = json.loads(text)
    except ValueError:
        raise ValidationFailed("Malformed JSON.", code="parse_error") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise ValidationFailed(
            "Each message is a JSON object with a 'type'.",
            code="bad_message",
            details={"type": ["This field is required."]},
        )
    return payload


async def authenticate(websocket: WebSocket, limits: Limits) -> Actor:
    """The actor, from the URL/subprotocol token or the first message; raises otherwise."""
    signed: Actor | None = websocket.scope.get("state", {}).get(SIGNED_ACTOR_STATE)
    if signed is not None:  # a handshake signed by Django, verified by SignedRequestMiddleware
        return signed
    ip = websocket.client.host if websocket.client else None
    token = _offered_token(websocket)
    if token is None:
        try:
            async with asyncio.timeout(min(AUTH_TIMEOUT_S, limits.idle_timeout_s)):
                first = await receive_json(websocket, limits)
        except TimeoutError:
            raise NotAuthenticated(
                f"No credentials within {AUTH_TIMEOUT_S:g} s: connect with ?token=<JWT or API "
                'key> or the subprotocol bearer.<token>, or send {"type": "auth", "token": '
                '"..."} first.'
            ) from None
        token = first.get("token") if first.get("type") == "auth" else None
        if not isinstance(token, str) or not token:
            raise NotAuthenticated('Send {"type": "auth", "token": "<JWT or API key>"} first.')
    return await actor_from_token(token, source=Source.COMPUTE, ip=ip)


async def close(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close with `code`, never raising (the client may be gone already)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await websocket.close(code=code, reason=reason[:120])
